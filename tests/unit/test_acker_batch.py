"""The acker's batch path must decide exactly what the one-message-at-a-time ledger decides."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from squall.runtime.acker import ACK, FAIL, RESET, AckerLedger
from squall.runtime.messages import OP_ACK, OP_FAIL, OP_INIT, OP_RESET

_CODES = {ACK: OP_ACK, FAIL: OP_FAIL, RESET: OP_RESET}

messages = st.lists(
    st.tuples(
        st.sampled_from([OP_INIT, OP_ACK, OP_ACK, OP_ACK, OP_FAIL, OP_RESET]),
        st.integers(1, 4),  # a few roots, so messages collide
        st.sampled_from([0, 1, 2, 3, 5, 8, 1 << 63]),
        st.integers(1, 3),  # spout task
    ),
    max_size=40,
)


def _one_by_one(
    msgs: list[tuple[int, int, int, int]], rotate_every: int
) -> list[tuple[int, int, int]]:
    ledger = AckerLedger(now=lambda: 0.0)
    out = []
    for i, (op, root, val, spout_task) in enumerate(msgs):
        if rotate_every and i and i % rotate_every == 0:
            ledger.rotate()
        if op == OP_INIT:
            res = ledger.init(root, val, spout_task)
        elif op == OP_ACK:
            res = ledger.ack(root, val)
        elif op == OP_FAIL:
            res = ledger.fail(root)
        else:
            res = ledger.reset_timeout(root)
        if res is not None:
            out.append((res[0], _CODES[res[1]], res[2]))
    return out


def _batched(
    msgs: list[tuple[int, int, int, int]], rotate_every: int, as_list: bool = True
) -> list[tuple[int, int, int]]:
    # A list batch takes the C twin when it is built; any other iterable the Python loop.
    ledger = AckerLedger(now=lambda: 0.0)
    out = []
    for i, msg in enumerate(msgs):
        if rotate_every and i and i % rotate_every == 0:
            ledger.rotate()
        outcomes: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        ledger.apply([msg] if as_list else iter([msg]), outcomes)
        assert len(ledger) == sum(len(b) for b in ledger._pending._buckets)
        for spout_task, lst in outcomes.items():
            out.extend((spout_task, op, root) for op, root in lst)
    return out


@settings(max_examples=300, deadline=None)
@given(messages, st.sampled_from([0, 3, 7]))
def test_batch_apply_matches_the_one_message_ledger(msgs, rotate_every) -> None:  # type: ignore[no-untyped-def]
    expected = _one_by_one(msgs, rotate_every)
    assert _batched(msgs, rotate_every, as_list=True) == expected
    assert _batched(msgs, rotate_every, as_list=False) == expected


def test_batch_apply_takes_messages_decoded_as_lists() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    out: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    ledger.apply([[OP_INIT, 5, 3, 1], [OP_ACK, 5, 3, 0]], out)  # type: ignore[list-item]
    assert out == {1: [(OP_ACK, 5)]}


def test_batch_apply_completes_a_tree_acked_before_its_init_arrives() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    out: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    ledger.apply([(OP_ACK, 9, 0b110, 0), (OP_INIT, 9, 0b110, 2)], out)
    assert out == {2: [(OP_ACK, 9)]}
    assert len(ledger) == 0
