"""Storm's even scheduler, rule by rule (EvenScheduler.java)."""

from __future__ import annotations

from squall.cluster.records import Assignment, WorkerAssignment, WorkerSlot
from squall.daemon.scheduler import (
    make_assignment,
    same_placement,
    schedule_even,
    sort_slots,
    topology_executors,
)


def slots(spec: str) -> list[WorkerSlot]:
    out = []
    for item in spec.split():
        node, port = item.split(":")
        out.append(WorkerSlot(node, int(port)))
    return out


def names(ss: list[WorkerSlot]) -> str:
    return " ".join(f"{s.node}:{s.port}" for s in ss)


def test_slots_interleave_supervisors_with_the_most_free_slots_first() -> None:
    # The example in EvenScheduler.sortSlots' comment.
    free = slots(
        "supervisor1:6700 supervisor1:6701 "
        "supervisor2:6700 supervisor2:6701 supervisor2:6702 "
        "supervisor3:6700 supervisor3:6703 supervisor3:6702 supervisor3:6701"
    )
    assert names(sort_slots(free)) == (
        "supervisor3:6700 supervisor2:6700 supervisor1:6700 "
        "supervisor3:6701 supervisor2:6701 supervisor1:6701 "
        "supervisor3:6702 supervisor2:6702 "
        "supervisor3:6703"
    )


def test_executors_sorted_by_start_task_go_round_robin_to_the_first_slots() -> None:
    execs = [(5, 6), (1, 2), (3, 4), (7, 7)]
    placement = schedule_even(execs, 2, {}, slots("a:6700 a:6701 b:6700 b:6701"))
    assert placement == {
        (1, 2): WorkerSlot("a", 6700),
        (3, 4): WorkerSlot("b", 6700),
        (5, 6): WorkerSlot("a", 6700),
        (7, 7): WorkerSlot("b", 6700),
    }


def test_a_topology_gets_no_more_workers_than_it_asks_for_or_than_there_are_slots() -> None:
    execs = [(i, i) for i in range(1, 9)]
    assert len(set(schedule_even(execs, 3, {}, slots("a:1 a:2 a:3 a:4")).values())) == 3
    assert len(set(schedule_even(execs, 6, {}, slots("a:1 b:1")).values())) == 2


def test_executors_on_live_workers_stay_and_only_the_dead_workers_move() -> None:
    execs = [(1, 1), (2, 2), (3, 3), (4, 4)]
    alive = {WorkerSlot("a", 6700): [(1, 1), (3, 3)]}
    placement = schedule_even(execs, 2, alive, slots("b:6700 b:6701 c:6700"))
    assert placement[(1, 1)] == placement[(3, 3)] == WorkerSlot("a", 6700)
    # The dead worker's executors move together to the first free slot.
    assert placement[(2, 2)] == placement[(4, 4)] == WorkerSlot("b", 6700)


def test_without_a_free_slot_the_dead_workers_executors_stay_unassigned() -> None:
    alive = {WorkerSlot("a", 6700): [(1, 1)]}
    placement = schedule_even([(1, 1), (2, 2)], 2, alive, [])
    assert placement == {(1, 1): WorkerSlot("a", 6700)}


def test_with_no_slot_at_all_nothing_is_placed() -> None:
    assert schedule_even([(1, 1)], 1, {}, []) == {}


def test_executors_are_split_like_the_plan_splits_them() -> None:
    assert topology_executors({"a": (1, 5), "b": (6, 6)}, {"a": 2, "b": 1}) == [
        (1, 3),
        (4, 5),
        (6, 6),
    ]
    # More executors than tasks: one task each.
    assert topology_executors({"a": (1, 2)}, {"a": 5}) == [(1, 1), (2, 2)]


def test_a_new_assignment_numbers_workers_in_slot_order() -> None:
    placement = {(1, 1): WorkerSlot("b", 6700), (2, 2): WorkerSlot("a", 6700)}
    a = make_assignment("t-1-1", placement, {"a": "10.0.0.1", "b": "10.0.0.2"}, None, 5.0)
    assert [(w.index, w.node, w.host, w.executors) for w in a.workers] == [
        (0, "a", "10.0.0.1", ((2, 2),)),
        (1, "b", "10.0.0.2", ((1, 1),)),
    ]
    assert {w.start_time_secs for w in a.workers} == {5.0}


def test_live_workers_keep_their_index_and_start_time_when_another_moves() -> None:
    old = Assignment(
        "t-1-1",
        (
            WorkerAssignment(0, "a", "h-a", 6700, ((1, 1),), 1.0),
            WorkerAssignment(1, "b", "h-b", 6700, ((2, 2),), 1.0),
        ),
    )
    # Worker 0 (on a) died; its executor moved to c.
    placement = {(1, 1): WorkerSlot("c", 6700), (2, 2): WorkerSlot("b", 6700)}
    new = make_assignment("t-1-1", placement, {"c": "h-c"}, old, 9.0)
    by_node = {w.node: w for w in new.workers}
    assert (by_node["b"].index, by_node["b"].start_time_secs) == (1, 1.0)
    assert (by_node["c"].index, by_node["c"].host, by_node["c"].start_time_secs) == (0, "h-c", 9.0)


def test_same_placement_ignores_start_times() -> None:
    a = Assignment("t", (WorkerAssignment(0, "a", "h", 1, ((1, 1),), 1.0),))
    b = Assignment("t", (WorkerAssignment(0, "a", "h", 1, ((1, 1),), 2.0),))
    c = Assignment("t", (WorkerAssignment(1, "a", "h", 1, ((1, 1),), 1.0),))
    assert same_placement(a, b)
    assert not same_placement(a, c)
    assert not same_placement(a, None)


def test_slots_to_avoid_are_used_only_when_nothing_else_is_free() -> None:
    dead = WorkerSlot("b", 6700)
    placement = schedule_even([(1, 1)], 1, {}, slots("a:6701 b:6700 b:6701"), avoid=[dead])
    assert placement == {(1, 1): WorkerSlot("a", 6701)}
    assert schedule_even([(1, 1)], 1, {}, [dead], avoid=[dead]) == {(1, 1): dead}
