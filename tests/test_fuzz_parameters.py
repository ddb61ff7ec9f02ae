"""Fuzzing registry parameters: any name, any type and size, into NdisReadConfiguration.

An adapter's ``parameters`` either are refused up front with a one-line
ValueError, or reach the mock driver through NdisReadConfiguration and
NdisReadNetworkAddress, which read them by Windows' rules (names without
regard to case, decimal or 0x-hex ULONGs, 12 hex digits for an address).
The driver then starts with exactly what it read, or fails Initialize
with a line naming the parameter; its knobs (StackHunger, FaultInject)
may fault it, as a DriverFault.
"""
import json
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ndisproxy import DriverFault, DriverImage, DriverStatusError, drivers

from .fuzzing import MAC, budget, corpus

pytestmark = pytest.mark.fuzz("registry parameters")

# mocknic's parameters (csrc/drivers/mocknic/param.c): (default, low, high).
RANGES = {"mtu": (1500, 576, 9000), "txring": (64, 8, 1024), "rxring": (128, 8, 1024),
          "interruptmoderation": (0, 0, 10000), "stackhunger": (0, 0, 1024 * 1024),
          "faultinject": (0, 0, 9)}
NAMES = ("MTU", "TxRing", "RxRing", "InterruptModeration", "StackHunger", "FaultInject",
         "NetworkAddress", "Environment", "NdisVersion")


def parse_ulong(text):
    """NdisReadConfiguration's reading of a REG_SZ as a ULONG, or None."""
    digits, base = (text[2:], 16) if text[:2] in ("0x", "0X") else (text, 10)
    allowed = string.hexdigits if base == 16 else string.digits
    if not digits or any(c not in allowed for c in digits):
        return None
    value = int(digits, base)
    return value if value <= 0xFFFFFFFF else None


def parse_address(text):
    """NdisReadNetworkAddress: 12 hex digits, ":" and "-" skipped before
    the last of them, nothing after it; or None."""
    digits = ""
    for char in text:
        if len(digits) == 12:
            return None
        if char in string.hexdigits:
            digits += char
        elif char not in ":-":
            return None
    return bytes.fromhex(digits) if len(digits) == 12 else None


def registry(parameters):
    """What the host's registry holds after set_parameter() of each, or the
    ValueError it must raise: {name folded as strcasecmp does: value text}."""
    held = {}
    for name, value in parameters.items():
        value = str(int(value) if isinstance(value, bool) else value)
        if len(name.encode()) >= 64 or len(value.encode()) >= 192 or "\0" in name + value:
            return ValueError
        if name.encode().lower() not in held and len(held) == 32:
            return ValueError
        held[name.encode().lower()] = value     # strcasecmp: ASCII letters only
    return held


def expected(held):
    """("ok", settings) or ("refused", name) for what the driver reads."""
    settings = {}
    for key, (default, low, high) in RANGES.items():
        value = parse_ulong(held[key.encode()]) if key.encode() in held else None
        value = default if value is None else value
        if not low <= value <= high:
            return "refused", key
        settings[key] = value
    address = parse_address(held.get(b"networkaddress", ""))
    if address is None or address[0] & 1 or not any(address):
        address = MAC
    settings["address"] = address
    return "ok", settings


def check(parameters):
    held = registry(parameters)
    with DriverImage.load(drivers.path("mocknic")) as image:
        if held is ValueError:
            with pytest.raises(ValueError) as info:
                image.create_adapter(parameters=parameters)
            assert "\n" not in str(info.value)
            return
        adapter = image.create_adapter(parameters=parameters)
        adapter.attach_mocknic(MAC)
        adapter.set_deadline("MiniportInitialize", 0.3)
        outcome, what = expected(held)
        knobs = outcome == "ok" and (what["faultinject"] or what["stackhunger"] > 8)
        try:
            adapter.initialize()
        except DriverStatusError as exc:
            assert outcome == "refused", exc
            assert "\n" not in str(exc) and f"parameter {what}" in str(exc).lower(), exc
            return
        except DriverFault as exc:
            assert knobs, exc                    # only the mock's knobs fault it
            assert "\n" not in str(exc)
            return
        assert outcome == "ok", f"Initialize took {what} = {held[what.encode()]!r}"
        assert adapter.query_raw("OID_GEN_MAXIMUM_FRAME_SIZE", 4).value == what["mtu"]
        assert adapter.max_frame == what["mtu"] + 18
        assert adapter.query_raw("OID_802_3_CURRENT_ADDRESS", 6).data == what["address"]
        if not knobs:
            adapter.halt()
            assert adapter.violations() == [] and adapter.allocations() == []


_NAMES = st.sampled_from(NAMES).flatmap(
    lambda name: st.sampled_from((name, name, name.upper(), name.lower(), name + "\0x"))) \
    | st.text(max_size=70)
_NUMBERS = st.integers(-2, 20000).map(str) | st.integers(-(2**40), 2**40) | st.booleans() \
    | st.sampled_from(("0x10", "0X5DC", "0x", "1500 ", " 1500", "+1500", "", "0x100000000",
                       "4294967295", "4294967296", "1500\0", "٣", "0x0x10"))
_ADDRESSES = st.sampled_from(("02:00:00:00:00:02", "02-00-00-00-00-02", "020000000002",
                              "03:00:00:00:00:02", "00:00:00:00:00:00", "02:00:00:00:00:0g",
                              "02:00:00:00:00:02:", ":02::00:00:00:00:02", "02:00:00:00:00",
                              "02:00:00:00:00:02:03")) \
    | st.tuples(st.binary(min_size=6, max_size=6), st.sampled_from(("", ":", "-"))).map(
        lambda raw_sep: raw_sep[0].hex(raw_sep[1]) if raw_sep[1] else raw_sep[0].hex())
_VALUES = _NUMBERS | _ADDRESSES | st.text(max_size=200) | st.floats() | st.none() \
    | st.lists(st.integers(), max_size=3)
# The driver's own parameters with values of their kind, over anything at all.
_TARGETED = st.fixed_dictionaries({}, optional={
    **{name: _NUMBERS for name in ("MTU", "TxRing", "RxRing", "InterruptModeration")},
    "StackHunger": st.integers(0, 80) | _NUMBERS, "FaultInject": st.integers(0, 12) | _NUMBERS,
    "NetworkAddress": _ADDRESSES})
parameters = st.builds(lambda anything, targeted: {**anything, **targeted},
                       st.dictionaries(_NAMES, _VALUES, max_size=4), _TARGETED) \
    | st.dictionaries(_NAMES, _VALUES, max_size=36)


def corpus_cases():
    """tests/fuzz_corpus/parameters/*.json: a JSON object of parameters each."""
    return [(name, json.loads(data)) for name, data in corpus("parameters")]


@pytest.mark.parametrize("parameters", [p for _, p in corpus_cases()],
                         ids=[n for n, _ in corpus_cases()])
def test_corpus(parameters):
    check(parameters)


@budget(250)
@given(parameters=parameters)
@example(parameters={"MTU\0garbage": "9000"})
@example(parameters={"MTU": "1500\0garbage"})
def test_any_parameters(fuzzed, parameters):
    fuzzed()
    check(parameters)
