"""The ``squall`` command line: parsing, config from flags, and usage errors."""

from __future__ import annotations

import pytest

from squall.cli.main import build_parser, main
from squall.cli.run import _cli_conf

pytestmark = pytest.mark.timeout(10)


def parse(*argv: str) -> dict[str, object]:
    return _cli_conf(build_parser().parse_args(["run", "t.py", *argv]))


def test_config_values_are_json_when_they_parse_and_strings_otherwise() -> None:
    conf = parse("-c", "topology.max.spout.pending=100", "-c", "a=true", "-c", "b=hello world")
    assert conf == {"topology.max.spout.pending": 100, "a": True, "b": "hello world"}


def test_a_value_may_contain_equals_signs_and_json_objects() -> None:
    conf = parse("-c", "db.url=postgres://h/db?x=1", "-c", 'm={"k": [1, 2]}')
    assert conf == {"db.url": "postgres://h/db?x=1", "m": {"k": [1, 2]}}


def test_workers_and_debug_flags_win_over_config_values() -> None:
    conf = parse("-c", "topology.workers=5", "--workers", "2", "--debug")
    assert conf == {"topology.workers": 2, "topology.debug": True}


def test_no_flags_means_no_config_overrides() -> None:
    assert parse() == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-c", "novalue"], "expected KEY=VALUE"),
        (["-c", "=3"], "expected KEY=VALUE"),
        (["--workers", "0"], "must be > 0"),
        (["--duration", "soon"], "expected a number of seconds"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "t.py", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    import squall

    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith(f"squall {squall.__version__} (Python ")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
