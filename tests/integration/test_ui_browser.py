"""The web UI in a real browser: Debian's chromium, headless, driven by selenium.

One running topology; the test loads its page, checks that the graph draws every
component and that the numbers move, deactivates it through the confirmation
dialog and sees the spout stop, then looks at a component page. Screenshots go
to test-artifacts/ (``make test`` installs chromium: .ci/services/chromium.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import ui_topologies as U

from squall import LocalCluster
from squall.ui import LocalSource, UIServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if not missing:
        return
    msg = f"{', '.join(missing)} missing: run `bash .ci/services/chromium.sh` (make test does)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _need_browser()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1400,1000",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, LocalCluster]]:
    log_dir = tmp_path_factory.mktemp("logs")
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, log_dir=log_dir, sample_secs=0.25) as server,
    ):
        cluster.submit("numbers", U.NumbersTopology, {U.RATE: 400})
        yield server, cluster


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(max(int(height), 900), 2400))
    time.sleep(0.2)
    driver.save_screenshot(str(ARTIFACTS / name))
    driver.set_window_size(1400, 1000)


def emitted_by_spout(driver: Any) -> int:
    node = driver.find_element("css selector", 'g.node[data-component="numbers"]')
    return int(node.get_attribute("data-emitted"))


def test_topology_page_draws_the_graph_moves_and_stops_on_deactivate(
    browser: Any, ui: tuple[UIServer, LocalCluster]
) -> None:
    server, cluster = ui
    browser.get(f"{server.url}/topology.html?id=numbers")
    nodes = wait_for(lambda: browser.find_elements("css selector", "svg.graph g.node"), "the graph")
    assert sorted(n.get_attribute("data-component") for n in nodes) == ["double", "numbers", "sink"]
    labels = browser.find_elements("css selector", "svg.graph g[data-edge-label]")
    assert len(labels) == 3  # numbers->double, double->sink on "default" and on "odd"
    wait_for(lambda: emitted_by_spout(browser) > 0, "the spout's first tuples")
    first = emitted_by_spout(browser)
    wait_for(lambda: emitted_by_spout(browser) > first + 50, "the numbers to move")
    wait_for(
        lambda: "fields(n)" in labels[0].text or any("fields(n)" in lab.text for lab in labels),
        "edge labels with their grouping",
    )
    assert browser.find_element("id", "status").text == "ACTIVE"
    screenshot(browser, "ui-topology.png")

    browser.find_element("id", "btn-deactivate").click()
    dialog = wait_for(lambda: browser.find_element("id", "confirm"), "the confirmation dialog")
    assert dialog.is_displayed()
    assert "Deactivate topology?" in dialog.text
    browser.save_screenshot(str(ARTIFACTS / "ui-confirm-deactivate.png"))
    browser.find_element("id", "confirm-ok").click()
    wait_for(lambda: browser.find_element("id", "status").text == "INACTIVE", "INACTIVE status")
    assert cluster.get("numbers").active is False

    def settled() -> bool:
        # A refresh that began before the click may still land: wait for two alike.
        before = emitted_by_spout(browser)
        time.sleep(1.1)
        return emitted_by_spout(browser) == before

    wait_for(settled, "the spout's count to stop moving")
    stopped = emitted_by_spout(browser)
    time.sleep(1.5)
    assert emitted_by_spout(browser) == stopped
    server.api.sample()
    assert server.api.topology("numbers")["spouts"][0]["emitted"] == stopped
    assert browser.find_element("id", "btn-activate").is_enabled()


def test_component_page_lists_executors_and_opens_a_traceback(
    browser: Any, ui: tuple[UIServer, LocalCluster]
) -> None:
    server, _ = ui
    browser.get(f"{server.url}/component.html?topology_id=numbers&id=double")
    rows = wait_for(
        lambda: browser.find_elements("css selector", "#executors tbody tr"), "executor rows"
    )
    assert [r.find_elements("tag name", "td")[0].text for r in rows] == ["[2-2]", "[3-3]"]
    summary = wait_for(
        lambda: browser.find_element("css selector", "#errors details.error summary"), "an error"
    )
    assert "no multiples of ten please" in summary.text
    summary.click()
    trace = browser.find_element("css selector", "#errors details.error pre.trace")
    wait_for(trace.is_displayed, "the traceback")
    assert "Traceback (most recent call last)" in trace.text
    time.sleep(1.2)  # a refresh must keep it open
    assert browser.find_element("css selector", "#errors details.error pre.trace").is_displayed()
    screenshot(browser, "ui-component.png")


def test_cluster_page_lists_the_topology(browser: Any, ui: tuple[UIServer, LocalCluster]) -> None:
    server, _ = ui
    browser.get(f"{server.url}/index.html")
    link = wait_for(
        lambda: browser.find_element("css selector", "#topologies a"), "the topology link"
    )
    assert link.text == "numbers"
    screenshot(browser, "ui-cluster.png")


@pytest.fixture(scope="module")
def cluster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, str]]:
    """A real cluster (ZooKeeper, nimbus, 2 supervisors) running the numbers on 2 workers,
    and the UI over it (what ``squall ui --conf cluster.json`` serves)."""
    from tests.chaos.harness import running_cluster

    from squall.cli.ui import cluster_ui as make_cluster_ui

    project = Path(__file__).resolve().parent / "ui_project" / "ui_numbers.py"
    with running_cluster(supervisors=2, slots=1) as cluster:
        cluster.squall(
            "submit", str(project), "--name", "numbers",
            "-c", "topology.workers=2", "-c", "ui.rate=200",
        )  # fmt: skip
        conf = json.loads(cluster.client_conf.read_text())
        server = make_cluster_ui(conf, "127.0.0.1", 0, None)
        server.api.sample_secs = 0.5
        with server:
            yield server, "numbers"


def test_the_cluster_ui_draws_a_topology_running_on_two_supervisors(
    browser: Any, cluster_ui: tuple[UIServer, str]
) -> None:
    server, name = cluster_ui
    browser.get(f"{server.url}/index.html")
    link = wait_for(
        lambda: browser.find_element("css selector", "#topologies a"), "the topology link", 30
    )
    assert link.text == name
    assert "local mode" not in browser.find_element("tag name", "h1").text
    screenshot(browser, "ui-cluster-mode.png")
    browser.get(f"{server.url}/topology.html?id={name}")
    nodes = wait_for(
        lambda: browser.find_elements("css selector", "svg.graph g.node"), "the graph", 30
    )
    assert sorted(n.get_attribute("data-component") for n in nodes) == ["double", "numbers", "sink"]
    wait_for(lambda: emitted_by_spout(browser) > 0, "the spout's counters from the heartbeats", 30)
    first = emitted_by_spout(browser)
    wait_for(lambda: emitted_by_spout(browser) > first + 100, "the numbers to move", 30)
    screenshot(browser, "ui-cluster-topology.png")
