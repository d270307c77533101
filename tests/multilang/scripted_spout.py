"""A multilang spout written straight against Storm's JSON protocol, with scripted faults.

Usage: ``python scripted_spout.py MODE AFTER``. Emits 0..N-1 (N = conf
"test.numbers") with ids, one per ``next``, answering every command with
``sync``. After AFTER emits, MODE misbehaves: ``exit1`` exits, ``hang`` never
answers again, ``bolt_command`` sends an ``ack`` (a bolt-only command),
``not_list`` emits a tuple that is not a list. With ``FAULT_ONCE`` set, only the
first child misbehaves; a restarted child starts from 0 again.
"""

import json
import os
import sys
import time


def read_frame():
    lines = []
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            sys.exit(2)
        if line == b"end\n":
            return json.loads(b"".join(lines))
        lines.append(line)


def send(msg):
    sys.stdout.buffer.write(json.dumps(msg).encode() + b"\nend\n")
    sys.stdout.buffer.flush()


def main():
    mode, after = sys.argv[1], int(sys.argv[2])
    once = os.environ.get("FAULT_ONCE")
    if once and os.path.exists(once):
        mode = "ok"
    hs = read_frame()
    total = int(hs["conf"]["test.numbers"])
    send({"pid": os.getpid()})
    n = 0
    while True:
        msg = read_frame()
        if isinstance(msg, list):
            continue
        if msg["command"] == "next" and n < total:
            if mode != "ok" and n >= after:
                if once:
                    open(once, "w").close()
                if mode == "exit1":
                    sys.exit(1)
                if mode == "hang":
                    time.sleep(3600)
                if mode == "bolt_command":
                    send({"command": "ack", "id": "1"})
                if mode == "not_list":
                    send({"command": "emit", "id": n, "tuple": {"n": n}, "need_task_ids": False})
                time.sleep(3600)
            send({"command": "emit", "id": n, "tuple": [n], "need_task_ids": False})
            n += 1
        send({"command": "sync"})


if __name__ == "__main__":
    main()
