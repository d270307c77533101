"""Multilang declarations: commands, working directories, launchers, streamparse and isolation.

Pure: nothing here starts a process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from squall import Bolt, ShellBolt, ShellSpout, Spout, Topology
from squall.api.topology import as_definition
from squall.multilang.isolated import IsolatedBolt, IsolatedSpout, isolated_command
from squall.multilang.run import load_class, parse_args
from squall.multilang.shell import resource_dir

HERE = str(Path(__file__).resolve().parent)


class Words(Spout):
    outputs = ["word"]


class Upper(Bolt):
    outputs = ["word"]

    def __init__(self, suffix: str = "!") -> None:
        super().__init__()
        self.suffix = suffix


def test_a_shell_spec_runs_in_the_directory_of_the_file_that_declares_it() -> None:
    class T(Topology):
        words = Words.spec()
        split = ShellBolt.spec(command="python3", script="split.py", inputs=[words], outputs=["w"])

    kwargs = as_definition(T).components["split"].kwargs
    assert kwargs["resource_dir"] == HERE
    assert kwargs["script"] == "split.py"


def test_an_explicit_cwd_wins_over_the_resource_dir() -> None:
    spec = ShellBolt.spec(command="node", script="x.js", cwd="/opt/x", outputs=["w"])
    assert spec.kwargs["cwd"] == "/opt/x" and "resource_dir" not in spec.kwargs


def test_resources_under_the_topology_dir_is_the_resource_dir_when_present(
    tmp_path: Path,
) -> None:
    assert resource_dir(str(tmp_path)) == str(tmp_path)
    (tmp_path / "resources").mkdir()
    assert resource_dir(str(tmp_path)) == str(tmp_path / "resources")


def test_the_command_is_split_like_a_shell_and_the_script_and_args_follow() -> None:
    bolt = ShellBolt(command="python3 -u", script="split.py", args=["--fast"])
    assert bolt.argv == ["python3", "-u", "split.py", "--fast"]
    assert ShellSpout(command=["node", "--no-warnings"], script="s.js").argv == [
        "node",
        "--no-warnings",
        "s.js",
    ]


def test_a_shell_component_without_a_command_says_how_to_give_one() -> None:
    with pytest.raises(TypeError, match=r'ShellBolt.spec\(command="python3"'):
        ShellBolt()


def test_class_attributes_can_declare_the_command_streamparse_style() -> None:
    class Split(ShellBolt):
        command = "python3"
        script = "split.py"
        outputs = ["word"]

    assert Split().argv == ["python3", "split.py"]


def test_the_builder_form_takes_the_same_keywords() -> None:
    from squall import TopologyBuilder

    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("split", ShellBolt, 2, outputs=["w"], command="python3", script="s.py")
    spec = b._specs["split"]
    assert spec.kwargs["command"] == "python3" and spec.kwargs["resource_dir"] == HERE


def test_the_launcher_takes_storm_s_one_string_form_and_both_class_spellings() -> None:
    assert parse_args(["bolts.wordcount.WordCountBolt -s msgpack"]) == (
        "bolts.wordcount",
        "WordCountBolt",
        "msgpack",
        [],
    )
    assert parse_args(["pkg.mod:Outer.Inner", "--path", "/x"]) == (
        "pkg.mod",
        "Outer.Inner",
        "json",
        ["/x"],
    )


def test_the_launcher_loads_a_class_from_a_file_when_the_module_is_not_importable(
    tmp_path: Path,
) -> None:
    f = tmp_path / "comp.py"
    f.write_text("class C:\n    class Inner:\n        x = 1\n")
    assert load_class("__main__", "C.Inner", str(f)).x == 1
    with pytest.raises(ModuleNotFoundError):
        load_class("no_such_module_here", "C")


def test_an_isolated_component_is_launched_through_the_adapter_with_this_python() -> None:
    argv, env = isolated_command(Upper, sys.executable, "msgpack")
    assert argv[:4] == [sys.executable, "-m", "squall.multilang.run", f"{__name__}:Upper"]
    assert argv[4:6] == ["-s", "msgpack"]
    assert argv[6] == "--file" and argv[7].endswith("test_multilang_config.py")
    assert HERE in env["PYTHONPATH"].split(":") or any(
        p and HERE.startswith(p) for p in env["PYTHONPATH"].split(":")
    )


def test_isolated_true_makes_the_engine_build_a_host_side_proxy() -> None:
    class T(Topology):
        words = Words.spec(isolated=True)
        upper = Upper.spec(inputs=[words], isolated={"serializer": "json"}, suffix="?")

    d = as_definition(T)
    spout, bolt = d.components["words"].make(), d.components["upper"].make()
    assert isinstance(spout, IsolatedSpout) and isinstance(bolt, IsolatedBolt)
    assert bolt._user_kwargs == {"suffix": "?"} and bolt._serializer_name == "json"
    # Outputs and groupings are the class's own: the proxy changes only where code runs.
    assert d.components["upper"].outputs["default"].fields == ("word",)


def test_unknown_isolation_options_are_named() -> None:
    class T(Topology):
        words = Words.spec(isolated={"pyhton": "/usr/bin/python3"})

    with pytest.raises(TypeError, match=r"unknown isolated option\(s\) \['pyhton'\]"):
        as_definition(T).components["words"].make()
