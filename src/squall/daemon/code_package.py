"""A topology's code as a package: the project folder, minus caches and virtualenvs.

``squall submit`` packs the folder the topology comes from (for a file, the
folder holding it; for a module, the folder its top-level package is imported
from) into a gzipped tar; nimbus stores it; each supervisor unpacks it for the
topology's workers. Unpacking trusts nothing in the archive: only regular files
and folders are extracted, every path must stay inside the destination, and
the sizes are capped before anything is written.

>>> import tempfile
>>> from pathlib import Path
>>> src = Path(tempfile.mkdtemp())
>>> _ = (src / "topo.py").write_text("X = 1\\n")
>>> (src / "__pycache__").mkdir(); _ = (src / "__pycache__" / "topo.pyc").write_bytes(b"")
>>> data = pack_project(src)
>>> dest = Path(tempfile.mkdtemp())
>>> unpack_project(data, dest)
['topo.py']
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from types import ModuleType

#: Folders never packed: caches, version control, virtualenvs by their usual names.
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        ".eggs",
        "node_modules",
        "squall-local",
    }
)
EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo", ".so.tmp"})
#: Default cap on a package (nimbus.max.upload.bytes has the same default).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Cap on what a package may unpack to, and on its number of entries.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 100_000


class PackageError(ValueError):
    """A project cannot be packed, or a package is unsafe or too large to unpack."""


def project_root(source: str, module: ModuleType) -> Path:
    """The folder to ship for a target: a file's folder, or a module's import root.

    >>> import json
    >>> project_root("json", json) == Path(json.__file__).parent.parent
    True
    """
    file = getattr(module, "__file__", None)
    if file is None:
        raise PackageError(f"{source}: the module has no file to ship")
    path = Path(file).resolve()
    if source.endswith(".py") or os.sep in source or "/" in source:
        return path.parent
    depth = module.__name__.count(".") + (1 if path.name == "__init__.py" else 0)
    return path.parents[depth]


def relative_target(source: str, module: ModuleType, root: Path) -> str:
    """How a worker finds the target inside the unpacked project (a relative file or a module)."""
    file = getattr(module, "__file__", None)
    if file is not None and (source.endswith(".py") or os.sep in source or "/" in source):
        return Path(file).resolve().relative_to(root).as_posix()
    return module.__name__


def _excluded(path: Path) -> bool:
    if path.is_dir():
        return path.name in EXCLUDED_DIRS or (path / "pyvenv.cfg").is_file()
    return path.suffix in EXCLUDED_SUFFIXES


def project_files(root: Path) -> list[Path]:
    """The files that go into the package, sorted (symlinks and special files are left out)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not _excluded(here / d) and not (here / d).is_symlink()
        )
        for name in sorted(filenames):
            p = here / name
            if p.is_symlink() or not p.is_file() or _excluded(p):
                continue
            out.append(p)
    return out


def pack_project(root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A gzipped tar of ``root`` (see the module docstring for what is left out).

    Raises:
        PackageError: the package would be larger than ``max_bytes``.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for path in project_files(root):
            rel = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
            if buf.tell() > max_bytes:
                raise PackageError(
                    f"the project folder {root} packs to more than {max_bytes} bytes "
                    f"(at {rel}); move data out of it or raise nimbus.max.upload.bytes"
                )
    data = buf.getvalue()
    if len(data) > max_bytes:
        raise PackageError(
            f"the project folder {root} packs to {len(data)} bytes, more than {max_bytes}"
        )
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpack_project(
    data: bytes,
    dest: Path,
    max_unpacked: int = MAX_UNPACKED_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> list[str]:
    """Extract a package into ``dest`` (which should be empty); return the files written.

    Raises:
        PackageError: the archive is corrupt, holds a path leaving ``dest``, a
            link or a special file, or unpacks to too much.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            return _extract(tar, dest.resolve(), max_unpacked, max_entries)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise PackageError(f"not a topology package, or a corrupt one: {e}") from e


def _extract(tar: tarfile.TarFile, dest: Path, max_unpacked: int, max_entries: int) -> list[str]:
    written: list[str] = []
    total = 0
    members = tar.getmembers()
    if len(members) > max_entries:
        raise PackageError(f"the package has {len(members)} entries, more than {max_entries}")
    for m in members:
        rel = PurePosixPath(m.name)
        if rel.is_absolute() or ".." in rel.parts or not m.name or m.name.startswith("/"):
            raise PackageError(f"the package holds an unsafe path: {m.name!r}")
        target = (dest / rel).resolve()
        if dest != target and dest not in target.parents:
            raise PackageError(f"the package holds a path leaving its folder: {m.name!r}")
        if m.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if not m.isfile():
            raise PackageError(f"the package holds a link or special file: {m.name!r}")
        total += m.size
        if total > max_unpacked:
            raise PackageError(f"the package unpacks to more than {max_unpacked} bytes")
        src = tar.extractfile(m)
        if src is None:
            raise PackageError(f"cannot read {m.name!r} from the package")
        target.parent.mkdir(parents=True, exist_ok=True)
        with src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.chmod(target, stat.S_IMODE(m.mode) & 0o755 | 0o600)
        written.append(rel.as_posix())
    return written
