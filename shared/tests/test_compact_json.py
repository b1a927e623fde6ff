"""The compact JSON form: orjson writes it, and writes what the standard library would (floats
aside, which are spelled differently but read back as the same number), so hashes chained over
strings and integers before orjson stay valid."""

from __future__ import annotations

import json
import random
import struct

import pytest

from tongban_kit.events.compact import compact_bytes, compact_json


def _reference(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_every_character_is_written_as_the_standard_library_writes_it() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for start in range(0, len(text), 4096):
        chunk = text[start : start + 4096]
        assert compact_json(chunk) == _reference(chunk)
        assert compact_json({chunk[:8]: [chunk]}) == _reference({chunk[:8]: [chunk]})


def test_integers_nesting_and_literals_agree() -> None:
    rng = random.Random(7)
    ints = [0, -1, 2**63 - 1, -(2**63), 2**53 + 1] + [rng.getrandbits(62) for _ in range(1000)]
    value = {
        "ints": ints,
        "nested": {"a": [True, False, None, {"b": '张三\n\t"\\'}], "": []},
        "order": {"z": 1, "a": 2},
    }
    assert compact_json(value) == _reference(value)
    assert compact_bytes(value) == _reference(value).encode()


def test_every_float_reads_back_as_the_same_number() -> None:
    rng = random.Random(7)
    floats = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(20_000)]
    floats = [f for f in floats if f == f and abs(f) != float("inf")]
    floats += [0.0, -0.0, 0.1, 1e16, 1e-7, 123456789.125, 5e-324, 1.7976931348623157e308]
    assert json.loads(compact_json(floats)) == floats


@pytest.mark.parametrize("value", [2**64, -(2**70), {"big": [10**30]}])
def test_what_orjson_will_not_write_is_written_by_the_standard_library(value: object) -> None:
    assert compact_json(value) == _reference(value)
    assert compact_bytes(value) == _reference(value).encode()


def test_a_lone_surrogate_still_cannot_be_encoded() -> None:
    assert compact_json("\ud800") == _reference("\ud800")
    with pytest.raises(UnicodeEncodeError):
        compact_bytes("\ud800")
