"""Storm's even scheduler: pure functions from the cluster's state to an assignment.

Nimbus calls these with what it read from ZooKeeper and writes what they
return; nothing here does I/O, so every rule is unit-tested.

The rules (``EvenScheduler.java``):

* the free slots are grouped by supervisor, each group sorted by port, the
  groups ordered by how many free slots they have (most first; ties by
  supervisor id), then interleaved: one slot of each supervisor in turn;
* executors that still run on live workers stay where they are;
* the others, sorted by start task, go round-robin to the first
  ``num_workers - live workers`` slots of that order.

>>> s = [WorkerSlot("a", 6701), WorkerSlot("a", 6700), WorkerSlot("b", 6700)]
>>> [f"{x.node}:{x.port}" for x in sort_slots(s)]
['a:6700', 'b:6700', 'a:6701']
>>> placement = schedule_even([(1, 1), (2, 2), (3, 3)], 2, {}, s)
>>> {e: f"{x.node}:{x.port}" for e, x in placement.items()}
{(1, 1): 'a:6700', (2, 2): 'b:6700', (3, 3): 'a:6700'}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from squall.cluster.records import Assignment, ExecutorId, WorkerAssignment, WorkerSlot
from squall.runtime.plan import partition_fixed


def sort_slots(slots: Iterable[WorkerSlot]) -> list[WorkerSlot]:
    """Storm's ``EvenScheduler.sortSlots``: interleave supervisors, fullest first."""
    groups: dict[str, list[WorkerSlot]] = {}
    for slot in slots:
        groups.setdefault(slot.node, []).append(slot)
    ordered = [sorted(groups[node], key=lambda s: s.port) for node in sorted(groups)]
    # A stable sort keeps the supervisor-id order among groups of the same size.
    ordered.sort(key=len, reverse=True)
    out: list[WorkerSlot] = []
    for i in range(max((len(g) for g in ordered), default=0)):
        out.extend(g[i] for g in ordered if i < len(g))
    return out


def schedule_even(
    executors: Iterable[ExecutorId],
    num_workers: int,
    alive_assigned: Mapping[WorkerSlot, Sequence[ExecutorId]],
    free_slots: Iterable[WorkerSlot],
    avoid: Collection[WorkerSlot] = (),
) -> dict[ExecutorId, WorkerSlot]:
    """Where every executor of one topology runs: the live ones stay, the rest spread.

    Args:
        executors: all the topology's executors.
        num_workers: the workers it asks for.
        alive_assigned: its live workers' slots and the executors they run.
        free_slots: slots no live worker uses (of any topology).
        avoid: free slots to use only after all others (Squall's addition: the slots
            whose workers just died there, so they move rather than stay put).

    Returns:
        executor -> slot. Executors for which no slot could be found (no free slot
        and no live worker to share) are left out.
    """
    wanted = list(executors)
    wanted_set = set(wanted)
    placement: dict[ExecutorId, WorkerSlot] = {}
    for slot, execs in alive_assigned.items():
        for e in execs:
            if e in wanted_set:
                placement[e] = slot
    candidates = [s for s in free_slots if s not in alive_assigned]
    free = sort_slots(s for s in candidates if s not in avoid)
    free += sort_slots(s for s in candidates if s in avoid)
    live = len(alive_assigned)
    total = min(num_workers, len(free) + live)
    reassign_slots = free[: max(0, min(total - live, len(free)))]
    if not reassign_slots:
        return placement
    todo = sorted((e for e in wanted if e not in placement), key=lambda e: e[0])
    for i, e in enumerate(todo):
        placement[e] = reassign_slots[i % len(reassign_slots)]
    return placement


def topology_executors(
    component_tasks: Mapping[str, tuple[int, int]], component_executors: Mapping[str, int]
) -> list[ExecutorId]:
    """Executors from task ranges and executor counts, split as ``make_plan`` splits them.

    >>> topology_executors({"count": (1, 4), "split": (5, 5)}, {"count": 3, "split": 1})
    [(1, 2), (3, 3), (4, 4), (5, 5)]
    """
    out: list[ExecutorId] = []
    for comp in sorted(component_tasks):
        first, last = component_tasks[comp]
        tasks = list(range(first, last + 1))
        for chunk in partition_fixed(int(component_executors.get(comp, len(tasks))), tasks):
            out.append((chunk[0], chunk[-1]))
    return sorted(out)


def make_assignment(
    topology_id: str,
    placement: Mapping[ExecutorId, WorkerSlot],
    hosts: Mapping[str, str],
    previous: Assignment | None,
    now_secs: float,
) -> Assignment:
    """Turn a placement into an assignment, keeping live workers' indices.

    A worker index is the id workers put on the wire, so a worker whose slot and
    executors are unchanged keeps its index (and its start time); workers on new
    slots get the smallest unused indices, in slot order.

    Args:
        topology_id: the topology.
        placement: executor -> slot (from :func:`schedule_even`).
        hosts: supervisor id -> the host its workers listen on.
        previous: the current assignment, if any.
        now_secs: start time for new workers.
    """
    by_slot: dict[WorkerSlot, list[ExecutorId]] = {}
    for e, slot in placement.items():
        by_slot.setdefault(slot, []).append(e)
    old = {w.slot: w for w in previous.workers} if previous is not None else {}
    kept: dict[WorkerSlot, WorkerAssignment] = {}
    for slot, execs in by_slot.items():
        w = old.get(slot)
        if w is not None and tuple(sorted(execs)) == tuple(sorted(w.executors)):
            kept[slot] = w
    used = {w.index for w in kept.values()}
    fresh = (i for i in range(0xFFFF) if i not in used)
    workers: list[WorkerAssignment] = list(kept.values())
    for slot in sort_slots(s for s in by_slot if s not in kept):
        host = hosts.get(slot.node) or (old[slot].host if slot in old else slot.node)
        workers.append(
            WorkerAssignment(
                index=next(fresh),
                node=slot.node,
                host=host,
                port=slot.port,
                executors=tuple(sorted(by_slot[slot])),
                start_time_secs=now_secs,
            )
        )
    workers.sort(key=lambda w: w.index)
    return Assignment(topology_id, tuple(workers))


def same_placement(a: Assignment | None, b: Assignment | None) -> bool:
    """True if both put the same executors on the same slots under the same indices."""
    if a is None or b is None:
        return a is b

    def key(x: Assignment) -> set[tuple[int, WorkerSlot, str, tuple[ExecutorId, ...]]]:
        return {(w.index, w.slot, w.host, tuple(sorted(w.executors))) for w in x.workers}

    return key(a) == key(b)
