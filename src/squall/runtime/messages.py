"""The shapes of what moves between executors (and, encoded, between workers).

Inbox entries are plain tuples, tagged by their first element:

* ``(DATA, dest_task, src_component, stream, src_task, values_list, roots_list | None)``:
  a batch of tuples of one stream from one task to one task. ``roots_list[i]`` is
  the anchor map ``{root_id: edge_xor}`` of tuple ``i`` or None (unanchored).
* ``(ACKER, dest_task, [(op, root, val, spout_task), ...])``: to an acker task.
* ``(SPOUT_ACK, dest_task, [(op, root), ...])``: outcomes from an acker to a spout task.
* ``(TICK, dest_task, rate_secs)``: a tick tuple (dest_task -1 means every task).
"""

from __future__ import annotations

from typing import Final

DATA: Final = 0
ACKER: Final = 1
SPOUT_ACK: Final = 2
TICK: Final = 3

OP_INIT: Final = 0
OP_ACK: Final = 1
OP_FAIL: Final = 2
OP_RESET: Final = 3
