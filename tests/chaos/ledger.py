"""Reading the ledger word count's ledgers: progress while it runs, and the verdict after.

The verdict applies the pass bar of the reliability plan's ``ledger_check.py``
(``lost = 0``, ``premature_acks = 0``, ``bogus_acks = 0``), re-stated here so the
tests do not depend on the shared tools folder.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from tests.chaos.ledger_project.ledger_wordcount import PARTS, sentence


def _lines(folder: Path, pattern: str) -> list[str]:
    out: list[str] = []
    for f in sorted(folder.glob(pattern)):
        out.extend(f.read_text(errors="replace").splitlines())
    return out


class _Progress:
    """Acked ids and emit count of a spout ledger folder, read incrementally (tests poll it)."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}
        self.acked: set[int] = set()
        self.emits = 0

    def update(self, folder: Path) -> None:
        for f in sorted(folder.glob("spout-*.jsonl")):
            with open(f, "rb") as fh:
                fh.seek(self.offsets.get(f, 0))
                data = fh.read()
            end = data.rfind(b"\n") + 1  # a torn last line is read next time
            self.offsets[f] = self.offsets.get(f, 0) + end
            for line in data[:end].splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("ev") == "ack":
                    self.acked.add(int(e["id"]))
                elif e.get("ev") == "emit":
                    self.emits += 1


_PROGRESS: dict[Path, _Progress] = {}


def _progress(folder: Path) -> _Progress:
    p = _PROGRESS.setdefault(Path(folder), _Progress())
    p.update(Path(folder))
    return p


def acked_ids(folder: Path) -> set[int]:
    return set(_progress(folder).acked)


def acked_count(folder: Path) -> int:
    return len(_progress(folder).acked)


def emits(folder: Path) -> int:
    return _progress(folder).emits


def word_counts(folder: Path) -> collections.Counter[str]:
    """Words seen by the sink, one per (id, part) even when replays wrote it twice."""
    seen: dict[tuple[int, int], str] = {}
    for line in _lines(folder, "sink-*.jsonl"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        seen[(int(r["id"]), int(r["part"]))] = str(r["word"])
    return collections.Counter(seen.values())


def sink_records(folder: Path) -> int:
    return len(_lines(folder, "sink-*.jsonl"))


def expected_counts(total: int) -> collections.Counter[str]:
    c: collections.Counter[str] = collections.Counter()
    for i in range(total):
        c.update(sentence(i))
    return c


def verdict(folder: Path, total: int) -> dict[str, Any]:
    """``ledger_check``'s report: ``lost``, ``premature_acks``, ``bogus_acks``, ``pass``..."""
    spout = _lines(folder, "spout-*.jsonl")
    sink = _lines(folder, "sink-*.jsonl")
    return check(spout, sink, [str(i) for i in range(total)], PARTS)


def check(
    spout_lines: list[str], sink_lines: list[str], expected: list[str], parts: int
) -> dict[str, Any]:
    """The pass bar of ``ledger_check.py``: every id acked, no ack before its tree was done."""
    first_emit: dict[str, float] = {}
    attempts: collections.Counter[str] = collections.Counter()
    acked: dict[str, float] = {}
    bogus = 0
    fails: collections.Counter[str] = collections.Counter()
    for line in spout_lines:
        try:
            e = json.loads(line)
            ev, i = e["ev"], str(e["id"])
        except (ValueError, KeyError, TypeError):
            continue
        if ev == "emit":
            attempts[i] += 1
            first_emit.setdefault(i, float(e.get("t", 0)))
        elif ev == "ack":
            if i not in first_emit:
                bogus += 1
            acked.setdefault(i, float(e.get("t", 0)))
        elif ev == "fail":
            fails[str(e.get("reason", "unknown"))] += 1
    seen: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for line in sink_lines:
        try:
            r = json.loads(line)
            seen[str(r["id"])][int(r["part"])] += 1
        except (ValueError, KeyError, TypeError):
            continue
    lost = sorted(set(expected) - set(acked), key=int)
    premature = sorted(
        (i for i in acked if any(seen.get(i, {}).get(p, 0) == 0 for p in range(parts))), key=int
    )
    dups = sum(c - 1 for got in seen.values() for c in got.values() if c > 1)
    lat = sorted(acked[i] - first_emit[i] for i in acked if i in first_emit)
    res = {
        "expected": len(expected),
        "emits_total": sum(attempts.values()),
        "replays": sum(a - 1 for a in attempts.values()),
        "ids_replayed": sum(1 for a in attempts.values() if a > 1),
        "acked_unique": len(acked),
        "fails": dict(fails),
        "lost": len(lost),
        "lost_sample": lost[:10],
        "premature_acks": len(premature),
        "premature_sample": premature[:10],
        "bogus_acks": bogus,
        "sink_duplicate_records": dups,
        "emit_to_ack_p99_s": round(lat[int(0.99 * (len(lat) - 1))], 3) if lat else None,
    }
    res["pass"] = res["lost"] == 0 and res["premature_acks"] == 0 and res["bogus_acks"] == 0
    return res
