"""Storm's Trident tutorial: word count with exactly-once state, and a DRPC query over it.

Sentences come in batches from a spout that cycles over four sentences; each
batch is split into words, counted per word (partially on each partition, then
summed per word) and the counts are applied to an opaque map state, exactly
once per batch. A DRPC function ``words`` sums the counts of the words it is
given::

    $ squall run examples/trident_wordcount.py
    $ curl http://127.0.0.1:3774/drpc/words/cat%20dog%20the%20man
    [[40]]

(``squall run`` starts a DRPC server on 127.0.0.1:3774 because the topology
has a DRPC stream.) The state is in memory here; pass
``SQUALL_STATE=redis://127.0.0.1:6379`` or ``SQUALL_STATE=sqlite:/tmp/wc.db``
to keep the counts (and where the spout stopped) in Redis or SQLite instead.
"""

from __future__ import annotations

import os

from squall.state import Backend, MapStateFactory, MemoryBackend, RedisBackend, SQLiteBackend
from squall.trident import Count, FilterNull, FixedBatchSpout, MapGet, Sum, TridentTopology

SENTENCES = [
    ["the cow jumped over the moon"],
    ["the man went to the store and bought some candy"],
    ["four score and seven years ago"],
    ["how many apples can you eat"],
]


def split(sentence: str) -> list[str]:
    """One row per word."""
    return sentence.split()


def backend_from(url: str | None) -> Backend:
    """``redis://host:port``, ``sqlite:PATH`` or nothing (in memory)."""
    if not url:
        return MemoryBackend("trident-wordcount")
    if url.startswith("redis://"):
        host, _, port = url[len("redis://") :].partition(":")
        return RedisBackend(host or "127.0.0.1", int(port or 6379))
    if url.startswith("sqlite:"):
        return SQLiteBackend(url[len("sqlite:") :])
    raise ValueError(f"SQUALL_STATE={url!r}: use redis://HOST:PORT or sqlite:PATH")


def build(backend: Backend, drpc: object = None) -> TridentTopology:
    """The tutorial topology; ``drpc`` is a LocalDRPC for tests (None: drpc.servers)."""
    topology = TridentTopology(meta=backend)
    spout = FixedBatchSpout(["sentence"], 3, *SENTENCES, cycle=True)
    word_counts = (
        topology.new_stream("spout1", spout)
        .each(["sentence"], split, ["word"])
        .group_by(["word"])
        .persistent_aggregate(
            MapStateFactory(backend, kind="opaque"), Count(), ["count"], state_id="word-counts"
        )
        .parallelism_hint(2)
    )
    (
        topology.new_drpc_stream("words", drpc)
        .each(["args"], split, ["word"])
        .group_by(["word"])
        .state_query(word_counts, ["word"], MapGet(), ["count"])
        .each(["count"], FilterNull())
        .aggregate(["count"], Sum(), ["sum"])
    )
    return topology


wordcount = build(backend_from(os.environ.get("SQUALL_STATE"))).build("trident-wordcount")
