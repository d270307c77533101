"""Multilang framing and message checks: pure, no processes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from squall.api.context import TopologyContext
from squall.api.grouping import Grouping
from squall.api.topology import GlobalStreamId
from squall.multilang.codec import JsonCodec, MsgpackCodec, ProtocolError, codec_for, excerpt
from squall.multilang.protocol import (
    BOLT_COMMANDS,
    anchor_ids,
    command_of,
    context_json,
    emit_fields,
    handshake_message,
    heartbeat_message,
    parse_pid_reply,
    spout_command,
    tuple_message,
)


def _feed_all(decoder: Any, *chunks: bytes) -> list[Any]:
    out: list[Any] = []
    for c in chunks:
        decoder.feed(c, out)
    return out


def test_json_messages_end_with_a_newline_and_an_end_line() -> None:
    assert JsonCodec().encode({"command": "sync"}) == b'{"command":"sync"}\nend\n'
    assert JsonCodec().encode([3, 4]) == b"[3,4]\nend\n"


def test_json_encoding_is_utf8_not_ascii_escapes() -> None:
    assert JsonCodec().encode(["héllo"]) == '["héllo"]\nend\n'.encode()


def test_a_json_message_split_across_reads_is_decoded_once_whole() -> None:
    d = JsonCodec().decoder(1024)
    assert _feed_all(d, b'{"command":', b'"ack","id":"1"}\n', b"en", b"d\n") == [
        {"command": "ack", "id": "1"}
    ]


def test_multi_line_json_is_one_message() -> None:
    d = JsonCodec().decoder(1024)
    assert _feed_all(d, b'{\n"command": "emit",\n"tuple": [1]\n}\nend\n') == [
        {"command": "emit", "tuple": [1]}
    ]


def test_blank_frames_are_skipped_as_pystorm_does() -> None:
    d = JsonCodec().decoder(1024)
    assert _feed_all(d, b"end\n\nend\n[1]\nend\n") == [[1]]


def test_several_messages_in_one_read_come_out_in_order() -> None:
    d = JsonCodec().decoder(1024)
    data = b"".join(JsonCodec().encode({"n": i}) for i in range(5))
    assert _feed_all(d, data) == [{"n": i} for i in range(5)]


def test_invalid_json_is_a_protocol_error_quoting_the_input() -> None:
    d = JsonCodec().decoder(1024)
    with pytest.raises(ProtocolError, match="invalid JSON") as e:
        _feed_all(d, b'{"command": "emit", "tuple": [1, \nend\n')
    assert e.value.offending is not None and '"tuple": [1,' in e.value.offending


def test_non_utf8_bytes_are_a_protocol_error() -> None:
    d = JsonCodec().decoder(1024)
    with pytest.raises(ProtocolError, match="UTF-8"):
        _feed_all(d, b'{"msg": "\xff\xfe"}\nend\n')


def test_a_line_over_the_cap_without_an_end_line_is_an_error_with_a_short_excerpt() -> None:
    d = JsonCodec().decoder(10_000)
    out: list[Any] = []
    with pytest.raises(ProtocolError, match="without an 'end' line") as e:
        for _ in range(20):
            d.feed(b"x" * 1000, out)
    assert e.value.offending is not None and len(e.value.offending) < 1200
    assert d.buffered() == 0


def test_a_whole_message_over_the_cap_is_an_error() -> None:
    d = JsonCodec().decoder(100)
    with pytest.raises(ProtocolError, match="over the 100-byte limit"):
        _feed_all(d, b'["' + b"y" * 200 + b'"]\nend\n')


def test_msgpack_messages_have_no_end_lines_and_round_trip() -> None:
    c = MsgpackCodec()
    data = c.encode({"command": "emit", "tuple": ["a", 1]}) + c.encode([7])
    assert b"end" not in data
    d = c.decoder(1024)
    assert _feed_all(d, data[:5], data[5:]) == [{"command": "emit", "tuple": ["a", 1]}, [7]]


def test_msgpack_over_the_cap_is_an_error() -> None:
    d = MsgpackCodec().decoder(1000)
    with pytest.raises(ProtocolError, match="over the 1000-byte limit"):
        _feed_all(d, msgpack.packb("z" * 5000))


def test_garbage_msgpack_is_an_error() -> None:
    d = MsgpackCodec().decoder(1000)
    with pytest.raises(ProtocolError, match="invalid msgpack"):
        _feed_all(d, b"\xc1\xc1\xc1")


def test_serializers_are_named_like_storm_and_pystorm_name_them() -> None:
    assert codec_for("org.apache.storm.multilang.JsonSerializer").name == "json"
    assert codec_for("pystorm.serializers.msgpack_serializer.MsgpackSerializer").name == "msgpack"
    with pytest.raises(ValueError, match="unknown multilang serializer 'xml'"):
        codec_for("xml")


def test_excerpts_are_cut_at_one_kib_and_say_how_big_the_input_was() -> None:
    text = excerpt(b"a" * 100_000)
    assert len(text) < 1100 and "100000 bytes in all" in text


def test_host_messages_have_storms_keys_in_storms_order() -> None:
    assert list(tuple_message("1", "spout", "default", 4, ["x"])) == [
        "id",
        "comp",
        "stream",
        "task",
        "tuple",
    ]
    assert heartbeat_message("9")["comp"] is None
    assert spout_command("ack", 12) == {"command": "ack", "id": 12}
    assert list(handshake_message("/p", {}, {})) == ["pidDir", "conf", "context"]
    assert "squall" in handshake_message("/p", {}, {}, {"batch": True})


def test_the_pid_reply_must_come_first_and_carry_a_number() -> None:
    assert parse_pid_reply({"pid": 12, "squall": {"batch": True}}) == (12, {"batch": True})
    with pytest.raises(ProtocolError, match="pid reply"):
        parse_pid_reply({"pid": "12"})
    with pytest.raises(ProtocolError, match="pid reply"):
        parse_pid_reply([1])


def test_commands_are_checked_against_what_the_component_accepts() -> None:
    assert command_of({"command": "ack", "id": "1"}, BOLT_COMMANDS) == "ack"
    with pytest.raises(ProtocolError, match="no 'command'"):
        command_of({"id": "1"}, BOLT_COMMANDS)
    with pytest.raises(ProtocolError, match="unknown command 'explode'"):
        command_of({"command": "explode"}, BOLT_COMMANDS)
    with pytest.raises(ProtocolError, match="task id lists only go"):
        command_of([1, 2], BOLT_COMMANDS)


def test_emit_defaults_follow_storm_stream_default_and_task_ids_wanted() -> None:
    assert emit_fields({"command": "emit", "tuple": [1]}) == ([1], "default", None, True)
    assert emit_fields({"tuple": [1], "stream": "s", "task": 7, "need_task_ids": False}) == (
        [1],
        "s",
        7,
        False,
    )
    # task 0 means a normal (not direct) emit, as in Storm
    assert emit_fields({"tuple": [1], "task": 0})[2] is None
    with pytest.raises(ProtocolError, match="must be a list"):
        emit_fields({"tuple": "abc"})
    with pytest.raises(ProtocolError, match="'stream' must be a string"):
        emit_fields({"tuple": [], "stream": 3})


def test_anchors_may_be_a_list_a_single_id_or_absent() -> None:
    assert anchor_ids({"anchors": ["1", "2"]}) == ["1", "2"]
    assert anchor_ids({"anchors": "1"}) == ["1"]
    assert anchor_ids({}) == []


def test_the_handshake_context_is_storms_json_shape() -> None:
    ctx = TopologyContext(
        topology_name="wc",
        task_id=3,
        component_id="split",
        task_to_component={1: "sink", 2: "sink", 3: "split", 4: "spout"},
        component_tasks={"sink": (1, 2), "split": (3,), "spout": (4,)},
        sources={GlobalStreamId("spout", "default"): Grouping.SHUFFLE},
        targets={"default": {"sink": Grouping.fields("word")}},
        output_fields={"default": ("word",)},
        stream_fields={
            "spout": {"default": ("sentence",)},
            "split": {"default": ("word",)},
            "sink": {},
        },
    )
    assert context_json(ctx) == {
        "task->component": {"1": "sink", "2": "sink", "3": "split", "4": "spout"},
        "taskid": 3,
        "componentid": "split",
        "streams": ["default"],
        "stream->outputfields": {"default": ["word"]},
        "stream->target->grouping": {"default": {"sink": {"type": "FIELDS", "fields": ["word"]}}},
        "source->stream->grouping": {"spout": {"default": {"type": "SHUFFLE"}}},
        "source->stream->fields": {"spout": {"default": ["sentence"]}},
    }
