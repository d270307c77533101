"""The Topology class DSL and TopologyBuilder describe the same topologies."""

from __future__ import annotations

from typing import Any

import pytest

from squall import (
    Bolt,
    Grouping,
    InvalidTopologyError,
    Spout,
    Stream,
    Topology,
    TopologyBuilder,
    TopologyDef,
)
from squall.api import GlobalStreamId, as_definition
from squall.testing import complete_topology, read_tuples

pytestmark = pytest.mark.timeout(10)


class Sentences(Spout):
    outputs = ["sentence"]


class Split(Bolt):
    outputs = [Stream(["word"]), Stream(["sentence", "error"], name="errors")]

    def __init__(self, sep: str = " ") -> None:
        super().__init__()
        self.sep = sep

    def process(self, tup: Any) -> None:
        for w in tup.values.sentence.split(self.sep):
            self.emit([w])


class Count(Bolt):
    outputs = ["word", "count"]


class Log(Bolt):
    pass


class WordCountDSL(Topology):
    config = {"topology.message.timeout.secs": 12}
    sentences = Sentences.spec(par=2)
    split = Split.spec(inputs=[sentences], par=3, sep=",")
    count = Count.spec(
        inputs={split: Grouping.fields("word")},
        par=2,
        tasks=4,
        config={"topology.tick.tuple.freq.secs": 5},
    )
    log = Log.spec(name="error-log", inputs={split["errors"]: Grouping.GLOBAL, count: Grouping.ALL})


def word_count_builder() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("sentences", Sentences, 2)
    b.set_bolt("split", Split, 3, sep=",").shuffle_grouping("sentences")
    b.set_bolt("count", Count, 2).fields_grouping("split", ["word"]).set_num_tasks(
        4
    ).add_configuration("topology.tick.tuple.freq.secs", 5)
    b.set_bolt("error-log", Log).global_grouping("split", "errors").all_grouping("count")
    b.set_config({"topology.message.timeout.secs": 12})
    return b


def test_dsl_and_builder_produce_equal_definitions() -> None:
    dsl = WordCountDSL.definition("wc")
    built = word_count_builder().create_topology("wc")
    assert dsl == built
    assert dsl.components["count"].inputs == ((GlobalStreamId("split"), Grouping.fields("word")),)
    assert dsl.components["error-log"].inputs == (
        (GlobalStreamId("split", "errors"), Grouping.GLOBAL),
        (GlobalStreamId("count"), Grouping.ALL),
    )
    assert dsl.components["split"].kwargs == {"sep": ","}
    assert dsl.config == {"topology.message.timeout.secs": 12}


def test_dsl_defaults_the_name_to_the_class_name() -> None:
    assert WordCountDSL.definition().name == "WordCountDSL"


def test_list_inputs_mean_shuffle_on_the_default_stream() -> None:
    class ListInputs(Topology):
        a = Sentences.spec()
        b = Sentences.spec()
        split = Split.spec(inputs=[a, b])

    class DictInputs(Topology):
        a = Sentences.spec()
        b = Sentences.spec()
        split = Split.spec(inputs={a: Grouping.SHUFFLE, b: Grouping.SHUFFLE})

    class SingleInput(Topology):
        a = Sentences.spec()
        b = Sentences.spec()
        split = Split.spec(inputs=a)

    lists = ListInputs.definition("t")
    assert lists == DictInputs.definition("t")
    assert SingleInput.definition("t").components["split"].inputs == (
        (GlobalStreamId("a"), Grouping.SHUFFLE),
    )


def test_inputs_can_name_components_and_streams_as_strings() -> None:
    class ByName(Topology):
        sentences = Sentences.spec()
        split = Split.spec(inputs=["sentences"])
        log = Log.spec(inputs={"split:errors": Grouping.SHUFFLE})

    d = ByName.definition()
    assert d.components["log"].inputs == ((GlobalStreamId("split", "errors"), Grouping.SHUFFLE),)


def test_nested_component_classes_in_the_class_body_are_not_components() -> None:
    class Nested(Topology):
        class Words(Spout):
            outputs = ["word"]

        class Upper(Bolt):
            outputs = ["word"]

            def process(self, tup: Any) -> None:
                self.emit([tup.values.word.upper()])

        words = Words.spec()
        upper = Upper.spec(inputs=[words])

    d = Nested.definition()
    assert sorted(d.components) == ["upper", "words"]
    result = complete_topology(Nested, mock_sources={"words": [["a"]]})
    assert read_tuples(result, "upper") == [["A"]]


def test_topology_subclasses_inherit_and_add_components() -> None:
    class Base(Topology):
        sentences = Sentences.spec()

    class Extended(Base):
        split = Split.spec(inputs=[Base.sentences])

    assert sorted(Extended.definition().components) == ["sentences", "split"]
    assert sorted(Base.definition().components) == ["sentences"]


def test_spec_outputs_override_the_class_outputs() -> None:
    class T(Topology):
        s = Sentences.spec(outputs=["line", "n"])
        b = Count.spec(inputs={s: Grouping.fields("n")})

    assert T.definition().components["s"].outputs["default"].fields == ("line", "n")


def test_as_definition_takes_a_class_a_builder_or_a_definition() -> None:
    d = WordCountDSL.definition("wc")
    assert as_definition(WordCountDSL, "wc") == d
    assert as_definition(word_count_builder(), "wc") == d
    assert as_definition(d) is d
    assert as_definition(d, "other").name == "other"
    with pytest.raises(TypeError, match="is not a topology"):
        as_definition(Sentences)


def test_with_config_merges_over_the_topology_config() -> None:
    d = WordCountDSL.definition().with_config({"topology.workers": 2})
    assert d.config == {"topology.message.timeout.secs": 12, "topology.workers": 2}
    assert isinstance(d, TopologyDef)


def test_spouts_and_bolts_are_listed_by_kind() -> None:
    d = WordCountDSL.definition()
    assert [c.name for c in d.spouts()] == ["sentences"]
    assert sorted(c.name for c in d.bolts()) == ["count", "error-log", "split"]


def test_a_cycle_is_a_valid_topology() -> None:
    class Loop(Bolt):
        outputs = ["n"]

        def process(self, tup: Any) -> None:
            if tup.values.n > 0:
                self.emit([tup.values.n - 1])

    class Countdown(Topology):
        start = Sentences.spec(outputs=["n"])
        loop = Loop.spec(inputs=["start", "loop"])

    result = complete_topology(Countdown, mock_sources={"start": [[3]]})
    assert read_tuples(result, "loop") == [[2], [1], [0]]
    assert result.acked["start"] == (0,)


def test_builder_subscribing_twice_to_one_stream_is_an_error() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Sentences)
    declarer = b.set_bolt("b", Split).shuffle_grouping("s")
    with pytest.raises(InvalidTopologyError, match="component 'b': subscribes to stream s:default"):
        declarer.all_grouping("s")


def test_dsl_subscribing_twice_to_one_stream_is_an_error() -> None:
    class Twice(Topology):
        s = Sentences.spec()
        b = Split.spec(inputs=[s, "s"])

    with pytest.raises(InvalidTopologyError, match="'b': subscribes to stream s:default twice"):
        Twice.definition()


def test_builder_needs_a_class_not_an_instance() -> None:
    b = TopologyBuilder()
    with pytest.raises(InvalidTopologyError, match="component 's': pass the component class"):
        b.set_spout("s", Sentences())  # type: ignore[arg-type]
    with pytest.raises(InvalidTopologyError, match="non-empty string"):
        b.set_spout("", Sentences)
