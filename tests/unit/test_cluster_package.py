"""Topology packages: what goes in, and what an unpacking supervisor refuses."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from squall.daemon.code_package import PackageError, pack_project, unpack_project


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_caches_virtualenvs_and_vcs_folders_stay_out(tmp_path: Path) -> None:
    (tmp_path / "topo.py").write_text("x = 1\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("y = 2\n")
    for folder in ("__pycache__", ".git", ".venv", ".mypy_cache"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "junk").write_text("junk")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "lib" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    out = tmp_path.parent / (tmp_path.name + "-out")
    assert sorted(unpack_project(pack_project(tmp_path), out)) == ["lib/helpers.py", "topo.py"]
    assert (out / "lib" / "helpers.py").read_text() == "y = 2\n"


def test_a_project_larger_than_the_cap_is_refused_naming_the_key(tmp_path: Path) -> None:
    import os

    (tmp_path / "big.bin").write_bytes(os.urandom(50_000))
    with pytest.raises(PackageError, match=r"nimbus\.max\.upload\.bytes"):
        pack_project(tmp_path, max_bytes=10_000)


@pytest.mark.parametrize(
    ("name", "message"),
    [("../escape.py", "unsafe path"), ("/etc/passwd", "unsafe path"), ("a/../../b", "unsafe")],
)
def test_paths_leaving_the_folder_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        unpack_project(_tar([_file(name)]), tmp_path / "out")
    assert not (tmp_path / "escape.py").exists()


def test_links_and_devices_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("evil")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/shadow"
    with pytest.raises(PackageError, match="link or special file"):
        unpack_project(_tar([(link, None)]), tmp_path / "out")
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(PackageError, match="link or special file"):
        unpack_project(_tar([(dev, None)]), tmp_path / "out")


def test_a_package_that_unpacks_to_too_much_is_refused(tmp_path: Path) -> None:
    data = _tar([_file("a", b"0" * 600), _file("b", b"0" * 600)])
    with pytest.raises(PackageError, match="more than 1000 bytes"):
        unpack_project(data, tmp_path / "out", max_unpacked=1000)
    with pytest.raises(PackageError, match="entries"):
        unpack_project(data, tmp_path / "out2", max_entries=1)


def test_bytes_that_are_no_package_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a topology package"):
        unpack_project(b"\x1f\x8b garbage", tmp_path / "out")
