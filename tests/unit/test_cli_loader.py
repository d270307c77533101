"""Finding the topology behind ``squall run FILE_OR_MODULE[:ATTR]``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from squall.api import TopologyBuilder, TopologyDef
from squall.cli.loader import TopologyLoadError, load_topology, split_target

pytestmark = pytest.mark.timeout(10)

COMPONENTS = """
from squall import Bolt, Grouping, Spout, Topology, TopologyBuilder

class Words(Spout):
    outputs = ["word"]

class Count(Bolt):
    outputs = ["word", "count"]
"""


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(COMPONENTS + textwrap.dedent(body))
    return path


def test_target_splits_at_the_last_colon_before_an_identifier() -> None:
    assert split_target("a/b.py:WordCount") == ("a/b.py", "WordCount")
    assert split_target("pkg.mod") == ("pkg.mod", None)
    assert split_target("pkg.mod:") == ("pkg.mod:", None)


def test_the_single_topology_class_of_a_file_is_found() -> None:
    loaded = load_topology(str(Path(__file__).parents[2] / "examples" / "wordcount.py"))
    assert loaded.obj.__name__ == "WordCount"
    assert loaded.default_name == "WordCount"
    assert loaded.where.endswith("wordcount.py:WordCount")


def test_a_module_level_builder_counts_as_a_topology(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "built.py",
        """
        builder = TopologyBuilder()
        builder.set_spout("words", Words)
        builder.set_bolt("count", Count).fields_grouping("words", ["word"])
        """,
    )
    loaded = load_topology(str(path))
    assert isinstance(loaded.obj, TopologyBuilder)
    assert loaded.default_name == "builder"


def test_several_topologies_are_listed_and_attr_picks_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.py",
        """
        class First(Topology):
            words = Words.spec()

        class Second(Topology):
            words = Words.spec()

        SECOND = Second.definition("second")
        """,
    )
    with pytest.raises(TopologyLoadError) as info:
        load_topology(str(path))
    msg = str(info.value)
    assert "defines 3 topologies" in msg
    assert "First (Topology class)" in msg and "SECOND (TopologyDef)" in msg
    assert f"{path}:NAME" in msg
    picked = load_topology(f"{path}:SECOND")
    assert isinstance(picked.obj, TopologyDef) and picked.default_name == "second"


def test_imported_topology_classes_are_not_candidates(tmp_path: Path) -> None:
    (tmp_path / "base_topo.py").write_text(
        COMPONENTS + "\nclass Base(Topology):\n    words = Words.spec()\n"
    )
    path = tmp_path / "uses_base.py"
    path.write_text(
        "from base_topo import Base, Words\nfrom squall import Topology\n\n"
        "class Mine(Topology):\n    words = Words.spec()\n"
    )
    assert load_topology(str(path)).obj.__name__ == "Mine"


def test_a_file_without_a_topology_says_how_to_define_one(tmp_path: Path) -> None:
    path = write(tmp_path, "none.py", "")
    with pytest.raises(TopologyLoadError, match="defines no topology"):
        load_topology(str(path))


def test_attr_that_is_not_a_topology_is_named_with_what_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "one.py", "class T(Topology):\n    words = Words.spec()\n")
    with pytest.raises(TopologyLoadError, match=r"one.py:Count is a Bolt class, not a topology"):
        load_topology(f"{path}:Count")
    with pytest.raises(
        TopologyLoadError, match=r"has no attribute 'Nope' \(topologies it defines: T\)"
    ):
        load_topology(f"{path}:Nope")


def test_an_exception_at_import_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "boom.py"
    path.write_text("x = 1\n\nraise RuntimeError('no config file')\n")
    with pytest.raises(TopologyLoadError) as info:
        load_topology(str(path))
    assert f"{path}:3: RuntimeError: no config file" in str(info.value)


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "syn.py"
    path.write_text("a = 1\ndef f(:\n    pass\n")
    with pytest.raises(TopologyLoadError, match=r"syn.py:2: syntax error"):
        load_topology(str(path))


def test_missing_file_and_missing_module_are_reported_plainly(tmp_path: Path) -> None:
    with pytest.raises(TopologyLoadError, match="no such file"):
        load_topology(str(tmp_path / "absent.py"))
    with pytest.raises(TopologyLoadError, match="no module named 'no_such_pkg_xyz'"):
        load_topology("no_such_pkg_xyz.topologies")


def test_a_dotted_module_is_imported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "clickpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "topo.py").write_text(
        COMPONENTS + "\nclass Clicks(Topology):\n    words = Words.spec()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = load_topology("clickpkg.topo:Clicks")
        assert loaded.obj.__name__ == "Clicks"
    finally:
        for name in ("clickpkg.topo", "clickpkg"):
            sys.modules.pop(name, None)
