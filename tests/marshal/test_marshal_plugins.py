"""Serializer plugins from the ``cellpipe.serializers`` entry point group."""

from __future__ import annotations

import os
import textwrap
from types import SimpleNamespace

import pytest

from cellpipe.marshal import MarshalError, open_store
from cellpipe.marshal.registry import Registry

PLUGIN_MODULE = '''
class Celsius:
    def __init__(self, degrees):
        self.degrees = degrees


class CelsiusText:
    """Writes a Celsius value as text: a plugin object as the entry point names it."""

    types = ["fakeplug_mod.Celsius"]
    format = "celsius-text"
    extension = ".celsius"

    def dump(self, value, file_path):
        with open(file_path, "w") as handle:
            handle.write(repr(value.degrees))

    def load(self, file_path):
        with open(file_path) as handle:
            return Celsius(float(handle.read()))


class Failing(CelsiusText):
    types = ["fakeplug_mod.Kelvin"]
    format = "kelvin"
    extension = "k"

    def dump(self, value, file_path):
        with open(file_path, "w") as handle:
            handle.write("partial")
        raise OSError("plugin failed half way")


class Kelvin:
    pass


class NoTypes:
    format = "broken"
    extension = "b"
'''

ENTRY_POINTS = """
[cellpipe.serializers]
celsius = fakeplug_mod:CelsiusText
kelvin = fakeplug_mod:Failing
missing-attr = fakeplug_mod:DoesNotExist
missing-module = no_such_module_anywhere:Thing
no-types = fakeplug_mod:NoTypes
takes-json = fakeplug_mod:TakesJson
"""


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A directory on sys.path holding a plugin module and its dist-info (as pip makes)."""
    site = tmp_path / "site"
    dist = site / "fakeplug-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    module = PLUGIN_MODULE + textwrap.dedent(
        """
        class TakesJson(CelsiusText):
            format = "json"
        """
    )
    (site / "fakeplug_mod.py").write_text(module)
    monkeypatch.syspath_prepend(str(site))
    yield site


def test_a_plugin_from_an_installed_distribution_saves_and_loads(plugin_path, tmp_path):
    import fakeplug_mod

    store = open_store(tmp_path / "store", registry=Registry())
    with pytest.warns(RuntimeWarning) as caught:
        meta = store.save("s", "temp", fakeplug_mod.Celsius(21.5))
    assert (meta.format, meta.file, meta.type) == (
        "celsius-text",
        "temp.celsius",
        "fakeplug_mod.Celsius",
    )
    with open(store.path("s", "temp")) as handle:
        assert handle.read() == "21.5"
    back = store.load("s", "temp")
    assert type(back) is fakeplug_mod.Celsius and back.degrees == 21.5

    messages = [str(w.message) for w in caught]
    for broken in ("missing-attr", "missing-module", "no-types", "takes-json"):
        assert any(broken in m for m in messages), (broken, messages)
    assert not any("celsius (" in m for m in messages)


def test_a_plugin_failing_mid_write_leaves_nothing_and_raises_a_marshal_error(
    plugin_path, tmp_path
):
    import fakeplug_mod

    store = open_store(tmp_path / "store", registry=Registry())
    with pytest.warns(RuntimeWarning), pytest.raises(MarshalError, match="half way") as info:
        store.save("s", "k", fakeplug_mod.Kelvin(), consumers=["t"])
    assert info.value.variable == "k" and info.value.consumers == ("t",)
    assert os.listdir(tmp_path / "store" / "s") == []


def _entry(name, obj):
    return SimpleNamespace(name=name, value=f"tests:{name}", load=lambda: obj)


class _Doubler:
    types = ("builtins.complex",)
    format = "complex-text"
    extension = "txt"

    def dump(self, value, file_path):
        with open(file_path, "w") as handle:
            handle.write(repr(value))

    def load(self, file_path):
        with open(file_path) as handle:
            return complex(handle.read())


def test_plugins_are_read_once_and_only_when_first_needed(tmp_path):
    calls = []

    def entry_points(group):
        calls.append(group)
        return [_entry("complex", _Doubler)]  # a class: instantiated without arguments

    registry = Registry(entry_points=entry_points)
    store = open_store(tmp_path, registry=registry)
    assert calls == []
    assert store.save("s", "z", 1 + 2j).format == "complex-text"
    assert store.load("s", "z") == 1 + 2j
    store.save("s", "n", [1])
    assert calls == ["cellpipe.serializers"]


def test_a_plugin_whose_loading_raises_is_skipped_with_a_warning(tmp_path):
    def explode():
        raise ImportError("compiled for another Python")

    def entry_points(group):
        broken = SimpleNamespace(name="fast-json", value="fastjson:Plugin", load=explode)
        return [broken, _entry("complex", _Doubler())]

    store = open_store(tmp_path, registry=Registry(entry_points=entry_points))
    with pytest.warns(RuntimeWarning, match=r"fast-json \(fastjson:Plugin\).*another Python"):
        meta = store.save("s", "z", 3j)
    assert meta.format == "complex-text"


def test_an_artifact_of_a_plugin_that_is_gone_says_what_to_install(tmp_path):
    with_plugin = open_store(tmp_path, registry=Registry(lambda group: [_entry("c", _Doubler)]))
    with_plugin.save("s", "z", 1j)
    without = open_store(tmp_path, registry=Registry(lambda group: []))
    with pytest.raises(MarshalError, match="complex-text") as info:
        without.load("s", "z")
    assert "plugin" in info.value.hint


class _TupleText:
    types = ("builtins.tuple",)
    format = "tuple-text"
    extension = "txt"

    def dump(self, value, file_path):
        with open(file_path, "w") as handle:
            handle.write(repr(value))

    def load(self, file_path):
        import ast

        with open(file_path) as handle:
            return ast.literal_eval(handle.read())


def test_a_plugin_for_an_exact_type_wins_over_the_built_in_choice(tmp_path):
    store = open_store(tmp_path, registry=Registry(lambda group: [_entry("t", _TupleText)]))
    assert store.save("s", "pair", (1, "a")).format == "tuple-text"
    assert store.load("s", "pair") == (1, "a")
    assert store.save("s", "items", [1, 2]).format == "json"  # other types unaffected
