"""Every bad topology, config or emit gets an error that names the culprit."""

from __future__ import annotations

from typing import Any

import pytest

from squall import (
    Bolt,
    Grouping,
    InvalidTopologyError,
    LocalCluster,
    Spout,
    Stream,
    Topology,
    TopologyBuilder,
)
from squall.api.grouping import GroupingSpec
from squall.config import ConfigError, check, defaults, parse_value
from squall.testing import complete_topology

pytestmark = pytest.mark.timeout(10)


class Words(Spout):
    outputs = ["word"]


class Count(Bolt):
    outputs = ["word", "count"]


class Sink(Bolt):
    pass


def invalid(build: Any) -> str:
    """The message of the InvalidTopologyError that building ``build`` raises."""
    with pytest.raises(InvalidTopologyError) as info:
        build()
    return str(info.value)


# -- structure --------------------------------------------------------------------


def test_subscribing_to_an_unknown_component_names_both_ends() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("count", Count).shuffle_grouping("wrods")
    msg = invalid(b.create_topology)
    assert "component 'count': subscribes to unknown component 'wrods'" in msg
    assert "(known: count, words)" in msg


def test_subscribing_to_an_undeclared_stream_lists_the_declared_ones() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("count", Count).shuffle_grouping("words", "nope")
    msg = invalid(b.create_topology)
    assert "component 'count': subscribes to stream 'nope' of 'words'" in msg
    assert "declares streams: default" in msg


def test_fields_grouping_on_an_undeclared_field_names_the_field() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("count", Count).fields_grouping("words", ["wrod"])
    msg = invalid(b.create_topology)
    assert "component 'count': groups words:default by field 'wrod'" in msg
    assert "declares fields ['word']" in msg


def test_partial_key_grouping_on_an_undeclared_field_names_the_field() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("count", Count).partial_key_grouping("words", ["x"])
    assert "by field 'x'" in invalid(b.create_topology)


def test_duplicate_component_ids_are_rejected_in_the_builder_and_the_dsl() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    with pytest.raises(InvalidTopologyError, match="duplicate component id 'words'"):
        b.set_bolt("words", Count)

    class Dup(Topology):
        a = Words.spec(name="same")
        b = Count.spec(name="same", inputs=[a])

    assert "duplicate component id 'same'" in invalid(Dup.definition)


@pytest.mark.parametrize("par", [0, -1, "2", 1.5, True])
def test_parallelism_must_be_a_positive_int(par: Any) -> None:
    class T(Topology):
        words = Words.spec(par=par)

    assert f"component 'words': parallelism must be a positive int, got {par!r}" in invalid(
        T.definition
    )


def test_task_count_must_be_a_positive_int() -> None:
    class T(Topology):
        words = Words.spec(tasks=0)

    assert "component 'words': tasks must be a positive int, got 0" in invalid(T.definition)


def test_reserved_component_and_stream_ids_are_rejected() -> None:
    class Reserved(Spout):
        outputs = [Stream(["x"], name="__tick")]

    b = TopologyBuilder()
    b.set_spout("__acker", Words)
    b.set_spout("ok", Reserved)
    msg = invalid(b.create_topology)
    assert "component '__acker': ids starting with '__' are reserved" in msg
    assert "component 'ok': stream id '__tick' is reserved" in msg


def test_component_ids_may_not_contain_a_colon() -> None:
    b = TopologyBuilder()
    b.set_spout("a:b", Words)
    assert "component 'a:b': ids may not contain ':'" in invalid(b.create_topology)


def test_topology_names_may_not_contain_path_characters() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    assert "topology name 'a/b' may not contain" in invalid(lambda: b.create_topology("a/b"))


def test_a_spout_cannot_declare_inputs() -> None:
    class T(Topology):
        a = Words.spec()
        b = Words.spec(inputs=[a])

    assert "component 'b': a spout cannot declare inputs" in invalid(T.definition)


def test_a_topology_needs_a_spout() -> None:
    b = TopologyBuilder()
    b.set_bolt("lonely", Count)
    assert "has no spout" in invalid(b.create_topology)

    class Empty(Topology):
        pass

    assert "declares no components" in invalid(Empty.definition)


def test_direct_streams_need_direct_grouping_and_back() -> None:
    class Both(Spout):
        outputs = [Stream(["x"]), Stream(["x"], name="d", direct=True)]

    b = TopologyBuilder()
    b.set_spout("s", Both)
    b.set_bolt("b1", Sink).shuffle_grouping("s", "d")
    b.set_bolt("b2", Sink).direct_grouping("s")
    msg = invalid(b.create_topology)
    assert "component 'b1': stream s:d is direct; subscribe to it with Grouping.DIRECT" in msg
    assert "component 'b2': direct grouping on s:default, which is not declared direct" in msg


def test_an_unknown_grouping_kind_is_named() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Words)
    b.set_bolt("b", Sink).grouping("s", GroupingSpec("bogus"))
    assert "component 'b': unknown grouping Grouping.BOGUS on s:default" in invalid(
        b.create_topology
    )


def test_an_input_that_is_not_in_the_topology_is_named() -> None:
    stray = Words.spec()

    class T(Topology):
        words = Words.spec()
        count = Count.spec(inputs=[stray])

    assert "component 'count': input <Words.spec" in invalid(T.definition)


def test_an_input_with_a_non_grouping_value_is_named() -> None:
    class T(Topology):
        words = Words.spec()
        count = Count.spec(inputs={words: "fields"})

    assert "component 'count': input" in invalid(T.definition)


def test_every_problem_is_listed_at_once() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words, 0)
    b.set_bolt("count", Count).shuffle_grouping("nope")
    msg = invalid(b.create_topology)
    assert "parallelism must be a positive int" in msg and "unknown component 'nope'" in msg


def test_output_declarations_are_checked() -> None:
    with pytest.raises(TypeError, match="stream 'default': fields must be a list of names"):
        Stream("word")
    with pytest.raises(ValueError, match=r"duplicate field names in \['a', 'a'\]"):
        Stream(["a", "a"])

    class Mixed(Spout):
        outputs = ["a", Stream(["b"], name="s")]  # type: ignore[list-item]

    b = TopologyBuilder()
    b.set_spout("mixed", Mixed)
    with pytest.raises(TypeError, match="component 'mixed': outputs mixes field names"):
        b.create_topology()


def test_groupings_need_field_names() -> None:
    with pytest.raises(ValueError, match=r"Grouping.fields\(\) needs at least one field"):
        Grouping.fields()
    with pytest.raises(TypeError, match="field names must be strings"):
        Grouping.fields(1)


# -- config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("topology.workers", "two", "'topology.workers' must be int, got str 'two'"),
        ("topology.workers", True, "'topology.workers' must be int, got bool True"),
        ("topology.workers", 0, "'topology.workers' must be > 0, got 0"),
        ("topology.acker.executors", -1, "'topology.acker.executors' must be >= 0"),
        ("topology.message.timeout.secs", "30", "'topology.message.timeout.secs' must be int"),
        ("topology.debug", 1, "'topology.debug' must be bool, got int 1"),
        ("topology.max.spout.pending", 0, "'topology.max.spout.pending' must be > 0"),
    ],
)
def test_config_values_of_the_wrong_type_name_the_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check({key: value})
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_config({key: value})
    assert message in invalid(b.create_topology)


def test_component_config_errors_name_the_component() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words).add_configuration("topology.tick.tuple.freq.secs", "5")
    msg = invalid(b.create_topology)
    assert "component 'words' config 'topology.tick.tuple.freq.secs' must be int or float" in msg


def test_unknown_config_keys_are_allowed_and_none_means_default() -> None:
    check({"my.own.setting": object(), "topology.max.spout.pending": None})
    assert defaults()["topology.message.timeout.secs"] == 30


def test_submit_checks_the_config_it_is_given() -> None:
    class T(Topology):
        words = Words.spec()

    with (
        LocalCluster(simulated_time=True) as cluster,
        pytest.raises(InvalidTopologyError, match=r"'topology.workers' must be int"),
    ):
        cluster.submit("t", T, {"topology.workers": "many"})


def test_command_line_values_parse_as_json_or_text() -> None:
    assert parse_value("3") == 3
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("hello") == "hello"


# -- emits checked at run time ------------------------------------------------------------


def run_error(bolt: type[Bolt]) -> Any:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("bad", bolt).shuffle_grouping("words")
    b.set_bolt("sink", Sink).shuffle_grouping("bad")
    result = complete_topology(b, mock_sources={"words": [["a"]]})
    (err,) = result.errors
    assert result.failed["words"] == (0,)
    return err


def test_emitting_the_wrong_number_of_fields_names_component_stream_and_fields() -> None:
    class TooMany(Bolt):
        outputs = ["word", "count"]

        def process(self, tup: Any) -> None:
            self.emit(["a", 1, "extra"])

    err = run_error(TooMany)
    assert err.error.startswith("EmitError: component 'bad' task ")
    assert "stream 'default' declares 2 field(s) ['word', 'count']" in err.error
    assert "the emitted tuple has 3: ['a', 1, 'extra']" in err.error


def test_emitting_to_an_undeclared_stream_names_the_declared_ones() -> None:
    class Stray(Bolt):
        outputs = [Stream(["word"]), Stream(["word"], name="other")]

        def process(self, tup: Any) -> None:
            self.emit(["a"], stream="typo")

    err = run_error(Stray)
    assert "emit to undeclared stream 'typo' (declared: default, other)" in err.error


def test_emitting_a_string_instead_of_a_list_is_named() -> None:
    class Stringly(Bolt):
        outputs = ["word"]

        def process(self, tup: Any) -> None:
            self.emit("abc")

    err = run_error(Stringly)
    assert "component 'bad'" in err.error and "'abc'" in err.error


def test_emitting_to_a_stream_nobody_subscribes_to_is_still_checked() -> None:
    class Unheard(Bolt):
        outputs = [Stream(["word"]), Stream(["a", "b"], name="unheard")]

        def process(self, tup: Any) -> None:
            self.emit([1], stream="unheard")

    err = run_error(Unheard)
    assert "stream 'unheard' declares 2 field(s)" in err.error


def test_spout_emit_errors_are_reported_too() -> None:
    class BadSpout(Spout):
        outputs = ["word"]
        done = False

        def next_tuple(self) -> None:
            if not self.done:
                self.done = True
                self.emit(["a", "b"], tup_id=1)

        def is_exhausted(self) -> bool:
            return self.done

    b = TopologyBuilder()
    b.set_spout("s", BadSpout)
    result = complete_topology(b)
    (err,) = result.errors
    assert err.component == "s"
    assert "stream 'default' declares 1 field(s) ['word']" in err.error


def test_emitting_before_the_component_runs_explains_itself() -> None:
    with pytest.raises(RuntimeError, match=r"Count.emit\(\) was called before the component"):
        Count().emit(["a", 1])


def test_set_spout_and_set_bolt_check_the_kind_of_component() -> None:
    b = TopologyBuilder()
    with pytest.raises(InvalidTopologyError, match="component 'c': set_spout needs a Spout"):
        b.set_spout("c", Count)
    with pytest.raises(InvalidTopologyError, match="component 'w': set_bolt needs a Bolt"):
        b.set_bolt("w", Words)
    with pytest.raises(InvalidTopologyError, match=r"component 'i': set_bolt needs a Bolt .*int"):
        b.set_bolt("i", int)  # type: ignore[arg-type]
