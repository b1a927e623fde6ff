"""Tests for tongban_kit.crypto.passwords (argon2id password hashing)."""

from __future__ import annotations

import time
from collections.abc import Callable

import argon2
import pytest

from tongban_kit.crypto import MAX_PASSWORD_LENGTH, PasswordHasher

PASSWORD = "correct horse battery staple"

# One hasher for the module: each hash costs ~35 ms and 19 MiB.
HASHER = PasswordHasher()
STORED = HASHER.hash(PASSWORD)


def test_hash_encodes_owasp_minimum_argon2id_parameters() -> None:
    assert STORED.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params = argon2.extract_parameters(STORED)
    assert params.type is argon2.Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert (params.salt_len, params.hash_len) == (16, 32)


def test_parameters_are_configurable() -> None:
    stored = PasswordHasher(memory_cost=32768, time_cost=3, parallelism=2).hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=32768,t=3,p=2$")


def test_right_password_verifies_and_salts_differ() -> None:
    assert HASHER.verify(STORED, PASSWORD)
    assert HASHER.hash(PASSWORD) != STORED
    chinese = "通办密码：春眠不觉晓"
    assert HASHER.verify(HASHER.hash(chinese), chinese)


@pytest.mark.parametrize("password", ["", "correct horse battery stapl", PASSWORD.upper(), "张三"])
def test_wrong_password_is_false(password: str) -> None:
    assert HASHER.verify(STORED, password) is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        STORED[:-6],
        STORED.replace("t=2", "t=0"),
        STORED.replace("p=1", "p=0"),
        STORED.replace("$v=19", "$v=99"),
        STORED.replace("$argon2id$", "$argon9$"),
        STORED[:-4] + "é" + STORED[-3:],  # non-ASCII: argon2-cffi itself would raise
        STORED + "\x00",  # the C library would ignore everything after a NUL
    ],
)
def test_malformed_hash_is_false(stored: str) -> None:
    assert HASHER.verify(stored, PASSWORD) is False


def test_hash_claiming_absurd_costs_is_refused_without_running_it() -> None:
    # m=4 GiB would allocate 4 GiB and take many seconds if it were run.
    absurd = STORED.replace("m=19456", "m=4194304")
    started = time.perf_counter()
    assert HASHER.verify(absurd, PASSWORD) is False
    assert time.perf_counter() - started < 1.0
    assert HASHER.verify(STORED.replace("t=2", "t=1000"), PASSWORD) is False


def test_needs_rehash_only_for_other_parameters() -> None:
    assert HASHER.needs_rehash(STORED) is False
    weaker = PasswordHasher(memory_cost=8192, time_cost=1).hash(PASSWORD)
    assert HASHER.verify(weaker, PASSWORD)  # old hashes keep working...
    assert HASHER.needs_rehash(weaker) is True  # ...and get upgraded at the next login
    argon2i = argon2.PasswordHasher(
        memory_cost=19456, time_cost=2, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    assert HASHER.needs_rehash(argon2i) is True
    assert HASHER.needs_rehash("garbage") is True
    assert HASHER.needs_rehash(STORED + "é") is True


def test_over_long_password_is_refused_before_hashing() -> None:
    longest = "密" * MAX_PASSWORD_LENGTH
    assert HASHER.verify(HASHER.hash(longest), longest)
    too_long = longest + "x"
    with pytest.raises(ValueError, match="1024"):
        HASHER.hash(too_long)
    assert HASHER.verify(STORED, too_long) is False
    assert HASHER.dummy_verify(too_long) is None


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def test_dummy_verify_takes_as_long_as_a_failed_verify() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    hasher.dummy_verify("warm-up")  # the first call also makes the decoy hash

    # Interleaved runs and the minimum of each: load on a shared CI box only ever
    # adds time, so the minima are the honest costs.
    real: list[float] = []
    decoy: list[float] = []
    for _ in range(5):
        real.append(_seconds(lambda: hasher.verify(stored, "wrong password")))
        decoy.append(_seconds(lambda: hasher.dummy_verify("wrong password")))
    ratio = min(decoy) / min(real)
    assert 0.5 < ratio < 2.0, (min(real), min(decoy))
    # Both really run argon2 (a no-op decoy would be microseconds).
    assert min(real) > 0.003
    assert min(decoy) > 0.003


def test_password_with_a_lone_surrogate_is_refused_not_crashed() -> None:
    # json.loads('"\\udcff"') yields one; argon2-cffi would raise UnicodeEncodeError.
    with pytest.raises(ValueError, match="Unicode"):
        HASHER.hash("pass\udcff")
    assert HASHER.verify(STORED, "pass\udcff") is False
    assert HASHER.dummy_verify("pass\udcff") is None
