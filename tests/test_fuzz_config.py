"""Fuzzing config files: random TOML documents and mutated valid ones.

ndisproxy.config.load() of anything gives a Config or a ConfigError whose
message is one line naming the file, never another exception; the same
for adapter_config() (the library API's tables) and check-config's reading
of bytes that are not UTF-8.  The seeds are tests/fuzz_corpus/config/*.toml.
"""
import copy
import datetime
import json
import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ndisproxy.config as configuration
from ndisproxy.config import ConfigError

from .fuzzing import budget, corpus_ids, mutated, one_line

pytestmark = pytest.mark.fuzz("config files")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Where configs are written: relative driver paths resolve here."""
    path = tmp_path_factory.mktemp("fuzzconfig")
    (path / "drivers").mkdir()
    (path / "drivers" / "x.sys").write_bytes(b"MZ")
    return path


def check(folder, data):
    path = folder / "ndisproxy.toml"
    path.write_bytes(data)
    try:
        config = configuration.load(path)
    except ConfigError as exc:
        assert one_line(str(exc)), repr(str(exc))
        assert str(exc).startswith(f"{path}: ") and exc.path == str(path)
        return None
    assert config.adapters and config.path == path
    return config


# -- TOML out of Python values (tomllib reads; nothing in the stdlib writes) -------


def toml_key(key):
    return json.dumps(key, ensure_ascii=False)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, (int, datetime.date, datetime.time)):
        return str(value) if isinstance(value, int) else value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(table):
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


SCALARS = st.sampled_from(("mocknic", "loopback", "tap", "vxlan", "process", "inprocess",
                           "64KiB", "1M", "192.0.2.1:4789", "[2001:db8::1]:4789",
                           "[fe80::1%eth0]:1", "02:4e:44:49:53:00", "ff:ff:ff:ff:ff:ff",
                           "ndis0", "ndis0w", "a/b.sys", "drivers/x.sys", "x.SYS", "/",
                           ".", "..", "peer", "mock", "", "debug", "nogroup", "root$")) \
    | st.text(max_size=24) | st.integers(-(2**64), 2**64) | st.integers(-2, 70000) \
    | st.booleans() | st.floats() | st.datetimes().map(lambda d: d.replace(microsecond=0)) \
    | st.dates() | st.times().map(lambda t: t.replace(microsecond=0))
KEYS = st.sampled_from(configuration._TOP_KEYS + configuration._DAEMON_KEYS
                       + configuration._ADAPTER_KEYS + configuration._WIRE_KEYS
                       + ("MTU", "TxRing", "mtu", "NetworkAddress", "Kind", "ifnam")) \
    | st.text(max_size=12)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=6), max_leaves=24)
WIRES = st.fixed_dictionaries({}, optional={k: SCALARS for k in configuration._WIRE_KEYS})
ADAPTERS = st.fixed_dictionaries(
    {}, optional={**{k: SCALARS for k in configuration._ADAPTER_KEYS},
                  "wire": WIRES | VALUES, "parameters": st.dictionaries(KEYS, SCALARS,
                                                                        max_size=34)}) \
    .flatmap(lambda known: st.dictionaries(KEYS, VALUES, max_size=2).map(
        lambda extra: {**extra, **known}))
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "daemon": st.fixed_dictionaries({}, optional={k: SCALARS
                                                   for k in configuration._DAEMON_KEYS}) | VALUES,
    "adapter": st.lists(ADAPTERS, max_size=4) | VALUES}) \
    .flatmap(lambda known: st.dictionaries(KEYS, VALUES, max_size=1).map(
        lambda extra: {**extra, **known}))

NAMES, SEEDS = corpus_ids("config")


def _slots(tree):
    """Every (container, key or index) in a parsed TOML tree."""
    found = []
    for key, value in (tree.items() if isinstance(tree, dict) else enumerate(tree)):
        found.append((tree, key))
        if isinstance(value, (dict, list)):
            found += _slots(value)
    return found


@st.composite
def mutated_tree(draw, text):
    """A valid config with a few values replaced, removed or added: mostly
    still TOML, so the checks behind the parser get the mutations."""
    tree = copy.deepcopy(tomllib.loads(text.decode()))
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(tree)))
        action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if action == "replace":
            container[key] = draw(SCALARS | VALUES)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(KEYS)] = draw(SCALARS | VALUES)
        else:
            container.append(copy.deepcopy(container[key]))
        if not tree:
            break
    return toml_document(tree).encode()



@pytest.mark.parametrize("data", SEEDS, ids=NAMES)
def test_corpus(folder, data):
    check(folder, data)


@budget(200)
@given(document=DOCUMENTS)
def test_random_documents(folder, fuzzed, document):
    fuzzed()
    check(folder, toml_document(document).encode())


@budget(150)
@given(data=st.sampled_from(SEEDS).flatmap(mutated))
def test_mutated_bytes(folder, fuzzed, data):
    fuzzed()
    check(folder, data)


@budget(250)
@given(data=st.sampled_from(SEEDS).flatmap(mutated_tree))
def test_mutated_values(folder, fuzzed, data):
    fuzzed()
    check(folder, data)


@budget(150)
@given(table=ADAPTERS)
def test_adapter_tables_of_the_library_api(folder, fuzzed, table):
    fuzzed()
    try:
        configuration.adapter_config(table, directory=folder)
    except ConfigError as exc:
        assert one_line(str(exc)), repr(str(exc))
