"""Where one word's time goes in a Squall word count row: py-spy lines and cProfile calls.

Runs ``bench/wordcount.py --only ROW`` under py-spy (sampling, 1 kHz, raw stacks),
keeps the samples taken inside ``Engine.run_once`` (the timed loop), and prints
the self time per source line and per function in nanoseconds per word
(share of samples x wall time of the row / words). Then runs the same row under
cProfile in this process and prints the function calls per word.

Run: ``.venv/bin/python bench/hotpath.py [--row squall-noack] [--secs 2] [--top 25]``
(py-spy must be allowed to ptrace its child; it is in the dev container).
Add ``--svg out.svg`` to also record a flame graph with py-spy.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import wordcount  # noqa: E402  (bench/ is not a package)


def _short(frame: str) -> str:
    # py-spy raw frames look like "BoltTask.emit (squall/runtime/executor.py:246)".
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').split('site-packages/')[-1]})"


def pyspy(row: str, secs: float, top: int, svg: str | None) -> None:
    exe = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if exe is None:
        print("py-spy not found; install the bench extra")
        return
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.txt")
        res = os.path.join(tmp, "res.json")
        cmd = [sys.executable, os.path.join(HERE, "wordcount.py"), "--only", row]
        cmd += ["--secs", str(secs), "--repeat", "1", "--json", res]
        spy = [exe, "record", "-r", "1000", "-f", "raw", "-o", raw, "--"]
        subprocess.run(spy + cmd, check=True, capture_output=True)
        if svg:
            subprocess.run([exe, "record", "-r", "1000", "-o", svg, "--", *cmd], check=True)
        with open(res) as f:
            result = json.load(f)
        rate = result["median"][row]
        lines: Counter[str] = Counter()
        funcs: Counter[str] = Counter()
        total = 0
        with open(raw) as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                frames = stack.split(";")
                if not any(fr.startswith("Engine.run_once ") for fr in frames):
                    continue
                k = int(n)
                total += k
                leaf = _short(frames[-1])
                lines[leaf] += k
                funcs[leaf.rsplit(":", 1)[0] + ")"] += k
    if not total:
        print("no samples inside Engine.run_once")
        return
    ns_per_word = 1e9 / rate
    print(f"{row}: {rate / 1e6:.2f}M words/s = {ns_per_word:.0f} ns/word ({total} samples)\n")
    print("self time by function (ns/word):")
    for fn, k in funcs.most_common(top):
        print(f"  {ns_per_word * k / total:6.0f}  {100 * k / total:4.1f}%  {fn}")
    print("\nself time by line (ns/word):")
    for ln, k in lines.most_common(top):
        print(f"  {ns_per_word * k / total:6.0f}  {100 * k / total:4.1f}%  {ln}")


def calls(row: str, secs: float, top: int) -> None:
    n = wordcount.sentences_for(int(secs * 1_000_000))
    words = wordcount.word_count(n)
    fn = wordcount.ROWS[row][1]
    prof = cProfile.Profile()
    prof.runcall(fn, n)
    st = pstats.Stats(prof)
    rows = []
    for (file, line, name), (_cc, nc, _tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        where = file.split("site-packages/")[-1].split("/src/")[-1]
        rows.append((nc / words, f"{name} ({os.path.basename(where)}:{line})"))
    rows.sort(reverse=True)
    print(f"\nfunction calls per word ({row}, cProfile, {words:,} words):")
    print(f"  {sum(r[0] for r in rows):6.2f}  all")
    for per, name in rows[:top]:
        if per < 0.01:
            break
        print(f"  {per:6.2f}  {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--row", default="squall-noack", choices=["squall-noack", "squall-ack"])
    p.add_argument("--secs", type=float, default=2.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--svg", help="also write a py-spy flame graph here")
    args = p.parse_args()
    pyspy(args.row, args.secs, args.top, args.svg)
    calls(args.row, min(args.secs, 0.5), args.top)


if __name__ == "__main__":
    main()
