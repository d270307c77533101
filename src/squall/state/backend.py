"""Key-value backends that Trident states, stateful bolts and Trident spout metadata use.

A backend is a small picklable *spec* (``MemoryBackend``, ``SQLiteBackend``,
``RedisBackend``) whose :meth:`~Backend.connect` opens a :class:`KeyValueStore`
in the process that needs it (a worker re-creates the spec from its pickled
topology, then connects). The store interface is deliberately tiny, so adding a
backend means writing four methods:

* ``get_many(table, keys)``: values or ``None``, in key order;
* ``get_all(table)``: every key of one table;
* ``write(puts, deletes)``: put and delete keys in several tables **atomically**
  (all or nothing: Trident's commit and the stateful bolts' checkpoints rely on it);
* ``close()``.

Tables are namespaces of string keys. Values are JSON-compatible Python values
(``None``, ``bool``, ``int``, ``float``, ``str``, lists and string-keyed dicts);
SQLite and Redis store them as JSON text, so tuples come back as lists.

>>> store = MemoryBackend("doc-example").connect()
>>> store.write({"counts": {"dog": 2, "cat": 1}})
>>> store.get_many("counts", ["dog", "cow"])
[2, None]
>>> store.write({}, {"counts": ["dog"]})
>>> store.get_all("counts")
{'cat': 1}
>>> MemoryBackend.reset("doc-example")
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Puts = Mapping[str, Mapping[str, Any]]
Deletes = Mapping[str, Collection[str]]


@runtime_checkable
class KeyValueStore(Protocol):
    """An open connection to a backend (see the module docstring)."""

    def get_many(self, table: str, keys: Sequence[str]) -> list[Any]: ...

    def get_all(self, table: str) -> dict[str, Any]: ...

    def write(self, puts: Puts, deletes: Deletes | None = None) -> None: ...

    def close(self) -> None: ...


class Backend:
    """A picklable description of where state lives; ``connect()`` opens it."""

    def connect(self) -> KeyValueStore:
        raise NotImplementedError

    def describe(self) -> str:
        """A short human-readable location, for error messages and logs."""
        return type(self).__name__


# -- in memory --------------------------------------------------------------------
_MEMORY: dict[str, dict[str, dict[str, Any]]] = {}
_MEMORY_LOCK = threading.Lock()


@dataclass(frozen=True)
class MemoryBackend(Backend):
    """Tables in this process's memory, shared by every task of the process under ``name``.

    Fast and embedded; gone when the process exits. Values are stored as given
    (not copied): never mutate a value after writing it.
    """

    name: str = "default"

    def connect(self) -> KeyValueStore:
        with _MEMORY_LOCK:
            tables = _MEMORY.setdefault(self.name, {})
        return _MemoryStore(tables)

    def describe(self) -> str:
        return f"memory:{self.name}"

    @staticmethod
    def reset(name: str | None = None) -> None:
        """Forget the tables of ``name`` (every name when None): for tests."""
        with _MEMORY_LOCK:
            if name is None:
                _MEMORY.clear()
            else:
                _MEMORY.pop(name, None)


class _MemoryStore:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._tables = tables

    def get_many(self, table: str, keys: Sequence[str]) -> list[Any]:
        t = self._tables.get(table)
        if t is None:
            return [None] * len(keys)
        get = t.get
        return [get(k) for k in keys]

    def get_all(self, table: str) -> dict[str, Any]:
        with _MEMORY_LOCK:
            return dict(self._tables.get(table, {}))

    def write(self, puts: Puts, deletes: Deletes | None = None) -> None:
        # One lock for the whole write: readers on other threads see all or nothing.
        with _MEMORY_LOCK:
            for table, items in puts.items():
                t = self._tables.get(table)
                if t is None:
                    t = self._tables[table] = {}
                t.update(items)
            for table, keys in (deletes or {}).items():
                t = self._tables.get(table)
                if t is not None:
                    for k in keys:
                        t.pop(k, None)

    def close(self) -> None:
        pass


# -- SQLite -----------------------------------------------------------------------
@dataclass(frozen=True)
class SQLiteBackend(Backend):
    """Tables in one SQLite file on local disk (every process may open the same file).

    Args:
        path: the database file; created with its folder if missing.
        timeout_secs: how long a writer waits for another process's lock.
    """

    path: str
    timeout_secs: float = 30.0

    def connect(self) -> KeyValueStore:
        return _SQLiteStore(self.path, self.timeout_secs)

    def describe(self) -> str:
        return f"sqlite:{self.path}"


class _SQLiteStore:
    def __init__(self, path: str, timeout_secs: float) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=timeout_secs, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS squall_kv (tbl TEXT NOT NULL, k TEXT NOT NULL, "
            "v TEXT NOT NULL, PRIMARY KEY (tbl, k)) WITHOUT ROWID"
        )

    def get_many(self, table: str, keys: Sequence[str]) -> list[Any]:
        found: dict[str, Any] = {}
        with self._lock:
            # SQLite limits bound parameters (999 in old builds): query in chunks.
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT k, v FROM squall_kv WHERE tbl = ? AND k IN ({marks})",
                    [table, *chunk],
                ).fetchall()
                for k, v in rows:
                    found[k] = json.loads(v)
        return [found.get(k) for k in keys]

    def get_all(self, table: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT k, v FROM squall_kv WHERE tbl = ?", (table,))
            return {k: json.loads(v) for k, v in rows.fetchall()}

    def write(self, puts: Puts, deletes: Deletes | None = None) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for table, items in puts.items():
                    db.executemany(
                        "INSERT OR REPLACE INTO squall_kv (tbl, k, v) VALUES (?, ?, ?)",
                        [(table, k, json.dumps(v)) for k, v in items.items()],
                    )
                for table, keys in (deletes or {}).items():
                    db.executemany(
                        "DELETE FROM squall_kv WHERE tbl = ? AND k = ?", [(table, k) for k in keys]
                    )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- Redis ------------------------------------------------------------------------
@dataclass(frozen=True)
class RedisBackend(Backend):
    """Tables as Redis hashes (``<prefix><table>``), values as JSON text.

    Needs the ``redis`` package (``pip install squall[redis]``).

    Args:
        host: the Redis server.
        port: its port.
        db: the database number.
        prefix: prepended to every table name to make the hash key.
        password: the server's password, if it has one.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    prefix: str = "squall:"
    password: str | None = None

    def connect(self) -> KeyValueStore:
        return _RedisStore(self)

    def client(self) -> Any:
        """A ``redis.Redis`` client for this server (strings in, strings out)."""
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                f"{self.describe()}: the Redis backend needs the redis package "
                "(pip install 'squall[redis]')"
            ) from e
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            password=self.password,
            decode_responses=True,
            socket_timeout=30,
            socket_connect_timeout=10,
        )

    def describe(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db} (prefix {self.prefix!r})"


class _RedisStore:
    def __init__(self, spec: RedisBackend) -> None:
        self._spec = spec
        self._r = spec.client()
        self._prefix = spec.prefix

    def get_many(self, table: str, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        raw = self._r.hmget(self._prefix + table, list(keys))
        return [None if v is None else json.loads(v) for v in raw]

    def get_all(self, table: str) -> dict[str, Any]:
        raw = self._r.hgetall(self._prefix + table)
        return {k: json.loads(v) for k, v in raw.items()}

    def write(self, puts: Puts, deletes: Deletes | None = None) -> None:
        # MULTI/EXEC: Redis applies the whole pipeline at once or not at all.
        pipe = self._r.pipeline(transaction=True)
        n = 0
        for table, items in puts.items():
            if items:
                pipe.hset(
                    self._prefix + table, mapping={k: json.dumps(v) for k, v in items.items()}
                )
                n += 1
        for table, keys in (deletes or {}).items():
            if keys:
                pipe.hdel(self._prefix + table, *keys)
                n += 1
        if n:
            pipe.execute()

    def close(self) -> None:
        self._r.close()


def as_backend(obj: Any, owner: str) -> Backend:
    """``obj`` if it is a :class:`Backend`, else a clear error naming ``owner``."""
    if isinstance(obj, Backend):
        return obj
    raise TypeError(
        f"{owner}: expected a state backend (MemoryBackend, SQLiteBackend or RedisBackend), "
        f"got {obj!r}"
    )


__all__ = [
    "Backend",
    "KeyValueStore",
    "MemoryBackend",
    "RedisBackend",
    "SQLiteBackend",
    "as_backend",
]
