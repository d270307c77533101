"""The reliability plan's "ledger word count" (reliability-plan.md §5.1), for cluster tests.

* ``LedgerSpout`` emits sentence *i* (ids split over its tasks) with message id
  *i*, and appends every emit, ack and fail to a per-task JSON-lines ledger.
  On start it reads its ledger and re-emits every id not yet acked, so it is
  restart-safe: the replayable source Storm delegates to a queue. Failed ids
  are emitted again.
* ``split`` emits ``(word, sid, part)`` anchored to the sentence;
  ``count`` (fields grouping on the word) appends ``{"id", "part", "word"}`` to
  a per-task sink ledger, then acks. (The field is ``sid``, not ``id``: ``tup.values.id``
  is the tuple's own id.)

``tools/reliability/ledger_check.py`` (or ``tests/chaos/ledger.py``) then
proves ``lost = 0`` and ``premature_acks = 0``.

Config: ``ledger.dir`` (where ledgers go), ``ledger.sentences`` (M),
``ledger.rate`` (max emits per second per spout task, 0 = unlimited),
``ledger.slow.ms`` (time ``count`` sleeps per tuple: a slow bolt).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from squall import Bolt, Grouping, Spout, Topology

WORDS = [
    "apple",
    "bear",
    "cloud",
    "dune",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "iris",
    "jade",
    "kelp",
    "lumen",
    "moss",
    "nectar",
    "onyx",
    "pearl",
    "quartz",
    "reef",
    "sage",
    "tundra",
    "umber",
    "violet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
]
PARTS = 5


def sentence(i: int) -> list[str]:
    """Sentence ``i``: 5 words, a fixed function of ``i`` (no salted hashing)."""
    x = (i * 2654435761 + 12345) & 0xFFFFFFFF
    out = []
    for _ in range(PARTS):
        out.append(WORDS[x % len(WORDS)])
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return out


def _append(fd: int, record: dict[str, Any]) -> None:
    # One write per line on an O_APPEND descriptor: a line is never interleaved, and a
    # kill -9 leaves at most one torn last line (the checker skips it).
    os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


class LedgerSpout(Spout):
    outputs = ["sentence", "sid"]

    def initialize(self, conf: Any, context: Any) -> None:
        folder = str(conf["ledger.dir"])
        total = int(conf["ledger.sentences"])
        self.rate = float(conf.get("ledger.rate") or 0)
        tasks = sorted(context.get_component_tasks(context.component_id))
        index = tasks.index(context.task_id)
        path = os.path.join(folder, f"spout-{context.task_id}.jsonl")
        acked: set[int] = set()
        self.attempts: dict[int, int] = {}
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("ev") == "ack":
                        acked.add(int(e["id"]))
                    elif e.get("ev") == "emit":
                        self.attempts[int(e["id"])] = int(e.get("attempt", 1))
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.todo = [i for i in range(index, total, len(tasks)) if i not in acked]
        self.todo.reverse()  # pop() from the end gives ids in increasing order
        self.tokens = 0.0
        self.last = time.monotonic()

    def next_tuple(self) -> None:
        if not self.todo:
            return
        if self.rate:
            now = time.monotonic()
            self.tokens = min(self.rate / 10, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < 1:
                return
            self.tokens -= 1
        i = self.todo.pop()
        attempt = self.attempts.get(i, 0) + 1
        self.attempts[i] = attempt
        _append(
            self.fd, {"ev": "emit", "id": i, "t": time.time(), "attempt": attempt, "parts": PARTS}
        )
        self.emit([" ".join(sentence(i)), i], tup_id=i)

    def ack(self, tup_id: Any) -> None:
        _append(self.fd, {"ev": "ack", "id": int(tup_id), "t": time.time()})

    def fail(self, tup_id: Any) -> None:
        _append(self.fd, {"ev": "fail", "id": int(tup_id), "t": time.time(), "reason": "failed"})
        self.todo.append(int(tup_id))


class LedgerSplit(Bolt):
    outputs = ["word", "sid", "part"]

    def process(self, tup: Any) -> None:
        i = tup.values.sid
        for part, word in enumerate(tup.values.sentence.split()):
            self.emit([word, i, part])


class LedgerCount(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        path = os.path.join(str(conf["ledger.dir"]), f"sink-{context.task_id}.jsonl")
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.slow = float(conf.get("ledger.slow.ms") or 0) / 1000

    def process(self, tup: Any) -> None:
        if self.slow:
            time.sleep(self.slow)
        v = tup.values
        _append(self.fd, {"id": v.sid, "part": v.part, "word": v.word, "t": time.time()})


class LedgerWordCount(Topology):
    sentences = LedgerSpout.spec(par=2)
    split = LedgerSplit.spec(inputs=[sentences], par=4)
    count = LedgerCount.spec(inputs={split: Grouping.fields("word")}, par=4)
