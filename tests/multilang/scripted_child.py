"""A multilang bolt written straight against Storm's JSON protocol, with scripted faults.

Usage: ``python scripted_child.py MODE [AFTER]``

* ``echo``: for each tuple, emit its values anchored to it (asking for task ids,
  Storm's default), then ack it. Heartbeats get ``sync``, ticks get ``ack``.
* ``busy``: compute (burn CPU) for 3 seconds on the first tuple, then echo; a
  healthy but slow child that must not be declared hung.
* ``split``: emit each word of the first value, each followed by a read of the
  task-id reply, then ack (the transcript of storm-spec.md §2.8).
* any fault mode (see ``FAULTS``): behave like ``echo`` for AFTER tuples, then
  misbehave. With ``FAULT_ONCE`` set to a file path, only the first child that
  finds no such file misbehaves (it creates the file), so a restarted child is
  healthy and the test can check that nothing was lost.

With ``RECORD`` set to a file path, every frame received is appended to it
verbatim (used by the golden-transcript test).
"""

import json
import os
import signal
import sys
import time

FAULTS = {
    "invalid_json",
    "no_command",
    "unknown_command",
    "tuple_not_list",
    "undeclared_stream",
    "wrong_fields",
    "ack_unknown",
    "no_end_silence",
    "ignore_heartbeat",
    "exit1",
    "segv",
    "huge_line",
    "stderr_flood",
    "no_handshake",
    "non_utf8",
    "sleepy",
}

stdin = sys.stdin.buffer
stdout = sys.stdout.buffer
record = os.environ.get("RECORD")


def read_frame():
    lines = []
    while True:
        line = stdin.readline()
        if not line:
            sys.exit(2)
        if line == b"end\n":
            break
        lines.append(line)
    frame = b"".join(lines)
    if record:
        with open(record, "ab") as f:
            f.write(frame + b"end\n")
    return json.loads(frame)


pending = []  # commands/tuples read while waiting for task ids


def read_task_ids():
    while True:
        msg = read_frame()
        if isinstance(msg, list):
            return msg
        pending.append(msg)


def next_message():
    return pending.pop(0) if pending else read_frame()


def send_raw(data):
    stdout.write(data)
    stdout.flush()


def send(msg):
    send_raw(json.dumps(msg).encode() + b"\nend\n")


def misbehave(mode, tup):
    tid = tup["id"]
    if mode == "invalid_json":
        send_raw(b'{"command": "emit", "tuple": [1, \nend\n')
    elif mode == "no_command":
        send({"id": tid})
    elif mode == "unknown_command":
        send({"command": "explode", "id": tid})
    elif mode == "tuple_not_list":
        send({"command": "emit", "anchors": [tid], "tuple": "not a list"})
    elif mode == "undeclared_stream":
        send({"command": "emit", "anchors": [tid], "stream": "nowhere", "tuple": tup["tuple"]})
    elif mode == "wrong_fields":
        send({"command": "emit", "anchors": [tid], "tuple": tup["tuple"] + ["extra"]})
    elif mode == "ack_unknown":
        send({"command": "ack", "id": "no-such-id"})
    elif mode == "no_end_silence":
        send_raw(b'{"command": "ack", "id": "' + tid.encode() + b'"}\n')
        time.sleep(3600)
    elif mode == "ignore_heartbeat":
        # Keep reading (so the pipe never fills) but never answer anything again.
        while True:
            next_message()
    elif mode == "exit1":
        sys.exit(1)
    elif mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif mode == "huge_line":
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            send_raw(chunk)
        time.sleep(3600)
    elif mode == "stderr_flood":
        # 1 GB to stderr, then carry on normally: the host must neither block nor hoard it.
        chunk = b"e" * 1023 + b"\n"
        block = chunk * 1024
        for _ in range(1024):
            sys.stderr.buffer.write(block)
        sys.stderr.buffer.flush()
        return False
    elif mode == "sleepy":
        time.sleep(3)  # stuck in a blocking call: silent and idle
        return False
    elif mode == "non_utf8":
        send_raw(b'{"command": "log", "msg": "\xff\xfe bad"}\nend\n')
    time.sleep(3600)
    return True


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "echo"
    after = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    once = os.environ.get("FAULT_ONCE")
    if mode in FAULTS and once:
        if os.path.exists(once):
            mode = "echo"
        else:
            with open(once, "w"):
                pass
    handshake = read_frame()
    if mode == "no_handshake":
        while True:
            time.sleep(1)
    open(os.path.join(handshake["pidDir"], str(os.getpid())), "w").close()
    send({"pid": os.getpid()})
    seen = 0
    while True:
        tup = next_message()
        if isinstance(tup, list):
            continue
        if tup["task"] == -1 and tup["stream"] == "__heartbeat":
            send({"command": "sync"})
            continue
        if tup["stream"] == "__tick":
            send({"command": "ack", "id": tup["id"]})
            continue
        if mode in FAULTS and seen >= after:
            if misbehave(mode, tup):
                continue
            mode = "echo"  # misbehaved once and carried on (stderr_flood, sleepy)
        if mode == "busy" and seen == 0:
            end = time.monotonic() + 3
            while time.monotonic() < end:
                sum(range(10000))
        seen += 1
        if mode == "split":
            for word in tup["tuple"][0].split():
                send({"command": "emit", "anchors": [tup["id"]], "tuple": [word]})
                read_task_ids()
        else:
            send({"command": "emit", "anchors": [tup["id"]], "tuple": tup["tuple"]})
            read_task_ids()
        send({"command": "ack", "id": tup["id"]})


if __name__ == "__main__":
    main()
