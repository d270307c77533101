"""Trident's txid logic: replays of batches never change the result (storm-spec §1.9).

The property: whatever sequence of failed, partial and repeated attempts each
batch goes through, the state ends equal to one clean run of the batches that
finally counted. For transactional state the replays have the same contents;
for opaque state failed attempts may hold different values (an opaque spout),
as long as the final attempt of a txid rewrites every key the failed ones wrote.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall.state import MapState, MemoryBackend, SQLiteBackend
from squall.state.values import (
    StateBehindError,
    opaque_update,
    put_cell,
    transactional_update,
)

pytestmark = pytest.mark.timeout(60)

KEYS = ["a", "b", "c", "d"]
_tables = itertools.count()

Batch = dict[str, int]


def add(delta: int) -> Any:
    return lambda old: (old or 0) + delta


@st.composite
def histories(draw: Any, opaque: bool) -> tuple[list[Batch], list[list[tuple[Batch, list[str]]]]]:
    """(final batches, per txid the failed attempts as (contents, keys applied before failing))."""
    n = draw(st.integers(1, 6))
    finals: list[Batch] = []
    failed: list[list[tuple[Batch, list[str]]]] = []
    for _ in range(n):
        keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
        final = {k: draw(st.integers(1, 9)) for k in keys}
        attempts: list[tuple[Batch, list[str]]] = []
        for _ in range(draw(st.integers(0, 3))):
            # Opaque: different values, but only for keys the final attempt writes again.
            contents = {k: draw(st.integers(1, 9)) for k in keys} if opaque else dict(final)
            applied = draw(st.lists(st.sampled_from(sorted(contents) or ["a"]), unique=True))
            attempts.append((contents, [k for k in applied if k in contents]))
        finals.append(final)
        failed.append(attempts)
    return finals, failed


def apply(state: MapState, txid: int, contents: Batch, keys: list[str]) -> None:
    state.begin_commit(txid)
    state.multi_update([(k,) for k in keys], [add(contents[k]) for k in keys])
    state.commit(txid)


def clean_run(finals: list[Batch]) -> dict[tuple[str, ...], int]:
    totals: dict[tuple[str, ...], int] = {}
    for batch in finals:
        for k, d in batch.items():
            totals[(k,)] = totals.get((k,), 0) + d
    return totals


def chaotic_run(state: MapState, finals: list[Batch], failed: list[Any], redo: bool) -> None:
    for txid, (final, attempts) in enumerate(zip(finals, failed, strict=True), start=1):
        for contents, keys in attempts:
            apply(state, txid, contents, keys)
        apply(state, txid, final, sorted(final))
        if redo:
            # The commit was applied but not recorded: the same batch comes again.
            apply(state, txid, final, sorted(final))


def memory_state(kind: str) -> MapState:
    return MapState(MemoryBackend("test-state-values").connect(), f"t{next(_tables)}", kind)


@settings(max_examples=200, deadline=None)
@given(histories(opaque=False), st.booleans())
def test_any_replays_of_a_transactional_batch_give_the_state_of_one_clean_run(
    history: Any, redo: bool
) -> None:
    finals, failed = history
    state = memory_state("transactional")
    chaotic_run(state, finals, failed, redo)
    assert state.items() == clean_run(finals)


@settings(max_examples=200, deadline=None)
@given(histories(opaque=True), st.booleans())
def test_any_replays_with_new_contents_of_an_opaque_batch_give_the_state_of_one_clean_run(
    history: Any, redo: bool
) -> None:
    finals, failed = history
    state = memory_state("opaque")
    chaotic_run(state, finals, failed, redo)
    assert state.items() == clean_run(finals)


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("state") / "state.db")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories(opaque=True), kind=st.sampled_from(["opaque", "transactional"]))
def test_replays_on_sqlite_give_the_state_of_one_clean_run(
    sqlite_path: str, history: Any, kind: str
) -> None:
    finals, failed = history
    if kind == "transactional":
        failed = [
            [(final, keys) for _, keys in atts] for final, atts in zip(finals, failed, strict=True)
        ]
    state = MapState(SQLiteBackend(sqlite_path).connect(), f"t{next(_tables)}", kind)
    chaotic_run(state, finals, failed, redo=True)
    assert state.items() == clean_run(finals)
    state.store.close()


def test_transactional_state_counts_wrong_when_a_replay_changes_contents() -> None:
    # Why exactly-once needs a transactional spout for transactional state: the
    # replay of txid 1 carries 5, but the state skips it and keeps the 3 of the
    # failed attempt.
    state = memory_state("transactional")
    apply(state, 1, {"a": 3}, ["a"])
    apply(state, 1, {"a": 5}, ["a"])
    assert state.multi_get([("a",)]) == [3]
    opaque = memory_state("opaque")
    apply(opaque, 1, {"a": 3}, ["a"])
    apply(opaque, 1, {"a": 5}, ["a"])
    assert opaque.multi_get([("a",)]) == [5]


def test_an_older_batch_than_the_stored_one_is_refused() -> None:
    with pytest.raises(
        StateBehindError, match="batch 1 applied to an opaque value already at batch 2"
    ):
        opaque_update([5, 2, 2], 1, add(1))
    with pytest.raises(StateBehindError, match="transactional value already at batch 2"):
        transactional_update([5, 2], 1, add(1))


def test_multi_put_sets_values_with_the_batch_txid() -> None:
    assert put_cell("transactional", [1, 1], 2, 9) == [9, 2]
    assert put_cell("opaque", [1, 0, 1], 2, 9) == [9, 1, 2]
    assert put_cell("opaque", [1, 0, 2], 2, 9) == [9, 0, 2]
    assert put_cell("non_transactional", 1, 2, 9) == 9


def test_writes_outside_a_batch_are_refused_with_the_table_named() -> None:
    state = memory_state("opaque")
    with pytest.raises(RuntimeError, match=r"multi_update outside a batch"):
        state.multi_update([("a",)], [add(1)])


def test_an_unknown_state_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="state kind must be one of"):
        MapState(MemoryBackend("x").connect(), "t", "exactly")
