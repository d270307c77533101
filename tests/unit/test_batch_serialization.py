"""Batches of inbox entries <-> msgpack frames (what crosses between worker processes)."""

from __future__ import annotations

import pickle
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.topologies import WordCount

from squall.api.tuple import values_class
from squall.runtime import messages
from squall.serialization import (
    BatchDecodeError,
    BatchDecoder,
    BatchEncoder,
    FrameTooLargeError,
    UnencodableValueError,
    batch,
    stream_fields_of,
)

FIELDS = {("split", "default"): ("word",), ("count", "default"): ("word", "count")}
Word = values_class("split", "default", ("word",), 3)
Pair = values_class("count", "default", ("word", "count"), 5)


def roundtrip(entries: list[tuple[Any, ...]], **kw: Any) -> list[tuple[Any, ...]]:
    enc = BatchEncoder(**kw)
    dec = BatchDecoder(FIELDS, **kw)
    return [e for frame in enc.encode(entries) for e in dec.decode(frame)]


def test_entry_tags_are_the_runtime_message_tags() -> None:
    assert (batch.DATA, batch.ACKER, batch.SPOUT_ACK, batch.TICK) == (
        messages.DATA,
        messages.ACKER,
        messages.SPOUT_ACK,
        messages.TICK,
    )


def test_decoded_values_are_instances_of_the_senders_value_class() -> None:
    entries = [
        (batch.DATA, 7, "split", "default", 3, [Word.make(["dog"]), Word.make(["cat"])], None)
    ]
    [(kind, dest, comp, stream, src, vals, roots)] = roundtrip(entries)
    assert (kind, dest, comp, stream, src, roots) == (batch.DATA, 7, "split", "default", 3, None)
    assert [type(v) for v in vals] == [Word, Word]
    assert vals[1].word == "cat"
    assert (vals[0].component, vals[0].stream, vals[0].task) == ("split", "default", 3)


def test_anchor_maps_with_64_bit_root_ids_survive_the_roundtrip() -> None:
    roots = [{2**64 - 1: 2**63 + 5, 17: 0}, None]
    entries = [
        (batch.DATA, 9, "count", "default", 5, [Pair.make(["a", 1]), Pair.make(["b", 2])], roots)
    ]
    assert roundtrip(entries)[0][6] == roots


def test_acker_and_spout_ack_entries_roundtrip_as_sequences_of_ints() -> None:
    entries = [
        (batch.ACKER, 1, [(messages.OP_INIT, 2**64 - 1, 2**63, 4), (messages.OP_ACK, 5, 6, 0)]),
        (batch.SPOUT_ACK, 4, [(messages.OP_FAIL, 2**64 - 1)]),
    ]
    out = roundtrip(entries)
    assert [(k, d, [tuple(m) for m in msgs]) for k, d, msgs in out] == entries


def test_values_keep_their_types_except_nested_tuples_which_arrive_as_lists() -> None:
    value = ["é", b"\x00\xff", 1.5, -(2**63), 2**64 - 1, True, None, {"k": [1, (2, 3)]}, (4, 5)]
    Wide = values_class("wide", "s", tuple(f"f{i}" for i in range(len(value))), 1)
    dec = BatchDecoder({("wide", "s"): Wide.fields})
    [frame] = BatchEncoder().encode([(batch.DATA, 2, "wide", "s", 1, [Wide.make(value)], None)])
    [got] = dec.decode(frame)[0][5]
    assert list(got) == [
        "é",
        b"\x00\xff",
        1.5,
        -(2**63),
        2**64 - 1,
        True,
        None,
        {"k": [1, [2, 3]]},
        [4, 5],
    ]


def test_a_value_msgpack_cannot_encode_is_refused_naming_component_stream_and_field() -> None:
    entries = [(batch.DATA, 9, "count", "default", 5, [Pair.make(["a", {1, 2}])], None)]
    with pytest.raises(UnencodableValueError) as info:
        BatchEncoder().encode(entries)
    message = str(info.value)
    assert "component 'count' task 5 stream 'default'" in message
    assert "field 'count' holds a set" in message
    assert (info.value.component, info.value.stream, info.value.task) == ("count", "default", 5)


def test_an_integer_wider_than_64_bits_is_refused_naming_the_field() -> None:
    entries = [(batch.DATA, 9, "count", "default", 5, [Pair.make(["a", [1, 2**70]])], None)]
    with pytest.raises(
        UnencodableValueError, match=r"field 'count'\[1\] holds an integer outside 64 bits"
    ):
        BatchEncoder().encode(entries)


def test_with_an_error_handler_bad_tuples_are_reported_and_the_rest_is_sent() -> None:
    good, bad = Word.make(["ok"]), Word.make([object()])
    entries = [
        (batch.DATA, 7, "split", "default", 3, [good, bad, good], [{1: 2}, {3: 4}, {5: 6}]),
        (batch.ACKER, 1, [(messages.OP_ACK, 1, 2, 0)]),
    ]
    errors: list[Exception] = []
    frames = BatchEncoder().encode(entries, errors.append)
    out = [e for f in frames for e in BatchDecoder(FIELDS).decode(f)]
    assert [list(v) for v in out[0][5]] == [["ok"], ["ok"]]
    assert out[0][6] == [{1: 2}, {5: 6}]
    assert out[1][0] == batch.ACKER
    assert len(errors) == 1 and "field 'word' holds a object" in str(errors[0])


def test_a_batch_over_the_frame_limit_is_split_into_frames_under_it_in_order() -> None:
    vals = [Word.make([f"word-{i:04d}"]) for i in range(1000)]
    roots = [{i: i} for i in range(1000)]
    entries = [(batch.DATA, 7, "split", "default", 3, vals, roots)]
    frames = BatchEncoder(max_frame_bytes=2000).encode(entries)
    assert len(frames) > 1 and all(len(f) <= 2000 for f in frames)
    dec = BatchDecoder(FIELDS, max_frame_bytes=2000)
    out = [e for f in frames for e in dec.decode(f)]
    assert [v for e in out for v in e[5]] == vals
    assert [r for e in out for r in e[6]] == roots


def test_a_single_tuple_over_the_frame_limit_is_refused_naming_the_component() -> None:
    entries = [(batch.DATA, 7, "split", "default", 3, [Word.make(["x" * 5000])], None)]
    with pytest.raises(FrameTooLargeError, match="component 'split' task 3 stream 'default'"):
        BatchEncoder(max_frame_bytes=1000).encode(entries)


def test_the_decoder_refuses_a_frame_over_the_limit_before_decoding_it() -> None:
    [frame] = BatchEncoder().encode(
        [(batch.DATA, 7, "split", "default", 3, [Word.make(["x" * 500])], None)]
    )
    with pytest.raises(FrameTooLargeError, match="larger than the 100-byte limit"):
        BatchDecoder(FIELDS, max_frame_bytes=100).decode(frame)


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb({"a": 1}), "must hold a list"),
        (
            msgpack.packb([[0, 7, "nope", "default", 3, [["x"]], None]]),
            "unknown stream 'nope':'default'",
        ),
        (msgpack.packb([[0, 7, "split", "default", 3, [["x", "y"]], None]]), "1 field(s) ['word']"),
        (
            msgpack.packb([[0, 7, "split", "default", 3, [["x"]], [None, None]]]),
            "anchors do not match",
        ),
        (msgpack.packb([[0, 7, "split", "default", 3, [5], None]]), "not a list of values"),
        (msgpack.packb([[3, 7, 1]]), "unknown entry"),
        (msgpack.packb([[1, "7", []]]), "malformed kind-1 entry"),
        (pickle.dumps([(0, 7, "split", "default", 3, [("x",)], None)]), "frame"),
    ],
)
def test_the_decoder_refuses_malformed_frames_with_a_clear_error(
    frame: bytes, complaint: str
) -> None:
    with pytest.raises(BatchDecodeError) as info:
        BatchDecoder(FIELDS).decode(frame)
    assert complaint in str(info.value)


def test_a_decoder_for_a_topology_knows_every_declared_stream() -> None:
    assert stream_fields_of(WordCount.definition()) == {
        ("sentences", "default"): ("sentence",),
        ("split", "default"): ("word",),
        ("count", "default"): ("word", "count"),
    }


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_values, _values), min_size=1, max_size=20), st.integers(0, 2**64 - 1))
def test_any_msgpack_values_roundtrip_unchanged(rows: list[tuple[Any, Any]], root: int) -> None:
    vals = [Pair.make(r) for r in rows]
    roots = [{root: i} for i in range(len(rows))]
    [out] = roundtrip([(batch.DATA, 9, "count", "default", 5, vals, roots)])
    assert out[5] == vals
    assert out[6] == roots
