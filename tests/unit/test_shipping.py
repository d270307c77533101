"""What local worker processes can re-create, and how they get the topology's code."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import pytest
from tests import topologies as T

from squall import Bolt, Grouping, Spout, Topology
from squall.api.topology import TopologyDef
from squall.daemon import shipping
from squall.daemon.shipping import NotShippableError, check_shippable


class Numbers(Spout):
    outputs = ["n"]


class Sink(Bolt):
    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.kwargs = kwargs


class EveryTask:
    """A custom grouping defined at module level (shippable)."""

    def prepare(self, context: object, stream: object, target_tasks: list[int]) -> None:
        self.targets = target_tasks

    def choose_tasks(self, task_id: int, values: list[object]) -> list[int]:
        return self.targets


def definition(**sink: object) -> TopologyDef:
    class Top(Topology):
        numbers = Numbers.spec()
        sink_ = Sink.spec(name="sink", inputs=[numbers], **sink)  # type: ignore[arg-type]

    return Top.definition()


def test_module_level_components_need_no_extra_source() -> None:
    assert check_shippable(T.WordCount.definition()) == ()


def test_a_component_class_defined_in_a_function_is_refused_naming_the_component() -> None:
    class Inner(Bolt):
        pass

    class Top(Topology):
        numbers = Numbers.spec()
        inner = Inner.spec(inputs=[numbers])

    with pytest.raises(NotShippableError) as info:
        check_shippable(Top.definition())
    assert str(info.value).startswith(
        "component 'inner': its class test_a_component_class_defined_in_a_function_is_refused"
    )
    assert "Move it to the top level of a module" in str(info.value)


def test_a_lambda_constructor_argument_is_refused_naming_component_and_argument() -> None:
    with pytest.raises(NotShippableError) as info:
        check_shippable(definition(key=lambda t: t))
    assert "component 'sink': its constructor argument key=" in str(info.value)
    assert "is a lambda" in str(info.value)


def test_an_unpicklable_constructor_argument_is_refused_naming_it() -> None:
    with pytest.raises(NotShippableError) as info:
        check_shippable(definition(lock=threading.Lock()))
    assert "component 'sink': its constructor argument lock=<unlocked _thread.lock" in str(
        info.value
    )
    assert "cannot be sent to a worker process" in str(info.value)


def test_a_custom_grouping_defined_in_a_function_is_refused_naming_the_input() -> None:
    class Mine(EveryTask):
        pass

    class Top(Topology):
        numbers = Numbers.spec()
        sink = Sink.spec(inputs={numbers: Grouping.custom(Mine())})

    with pytest.raises(NotShippableError) as info:
        check_shippable(Top.definition())
    assert "component 'sink': the custom grouping" in str(info.value)
    assert "on its input numbers:default" in str(info.value)


def test_a_module_level_custom_grouping_is_shippable() -> None:
    class Top(Topology):
        numbers = Numbers.spec()
        sink = Sink.spec(inputs={numbers: Grouping.custom(EveryTask())})

    assert check_shippable(Top.definition()) == ()  # importable by name: no source to ship


def test_a_topology_file_loads_under_a_stable_name_and_becomes_a_source(tmp_path: Path) -> None:
    path = tmp_path / "my-topo.py"
    path.write_text(
        "from squall import Spout, Topology\n"
        "class S(Spout):\n"
        "    outputs = ['n']\n"
        "class T(Topology):\n"
        "    s = S.spec()\n"
    )
    module = shipping.load_topology_source(str(path))
    try:
        assert module.__name__ == shipping.source_module_name(path)
        assert module.__name__.startswith("squall_topology_my_topo_")
        assert shipping.load_topology_source(path) is module  # loaded once
        sources = check_shippable(module.T.definition())
        assert sources == (shipping.TopologySource(module.__name__, str(path.resolve())),)
    finally:
        sys.modules.pop(module.__name__, None)
        shipping._SOURCES.pop(module.__name__, None)


def test_a_class_from_a_module_that_cannot_be_imported_by_name_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("loaded_by_hand_xyz")
    exec("from squall import Spout\nclass S(Spout):\n    outputs = ['n']\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "loaded_by_hand_xyz", module)

    class Top(Topology):
        s = module.S.spec()

    with pytest.raises(NotShippableError, match=r"cannot be imported by name from sys\.path"):
        check_shippable(Top.definition())


def test_a_class_from_an_interactive_main_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")  # like a REPL: no __file__
    exec("from squall import Spout\nclass S(Spout):\n    outputs = ['n']\n", main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)

    class Top(Topology):
        s = main.S.spec()

    with pytest.raises(NotShippableError, match="is defined in __main__"):
        check_shippable(Top.definition())


def test_the_packed_topology_unpacks_to_an_equal_definition() -> None:
    d = T.WordCount.definition()
    topology, conf = shipping.unpack_topology(shipping.pack_topology(d, {"topology.workers": 2}))
    assert conf == {"topology.workers": 2}
    assert topology.name == d.name
    assert dict(topology.components) == dict(d.components)
