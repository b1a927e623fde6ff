"""Tests for tongban_kit.crypto.totp (RFC 6238 one-time passwords)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tongban_kit.crypto import new_totp_secret, provisioning_uri, totp_at, verify_totp

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
STEP = 30


@pytest.mark.parametrize(
    ("unix_time", "step", "code"),
    [
        (59, 0x1, "94287082"),
        (1111111109, 0x23523EC, "07081804"),
        (1111111111, 0x23523ED, "14050471"),
        (1234567890, 0x273EF07, "89005924"),
        (2000000000, 0x3F940AA, "69279037"),
        (20000000000, 0x27BC86AA, "65353130"),
    ],
)
def test_rfc_6238_appendix_b_sha1_vectors(unix_time: int, step: int, code: str) -> None:
    assert totp_at(RFC_SECRET, unix_time, digits=8) == code
    assert verify_totp(RFC_SECRET, code, now=unix_time, last_used_step=None, digits=8) == step
    # Six digits are the same truncated value taken modulo 10^6.
    assert totp_at(RFC_SECRET, unix_time) == code[-6:]


def test_step_boundaries() -> None:
    assert totp_at(RFC_SECRET, 30) == totp_at(RFC_SECRET, 59.999)
    assert totp_at(RFC_SECRET, 29.999) != totp_at(RFC_SECRET, 30)


def test_a_used_step_cannot_be_replayed() -> None:
    now = 1_700_000_000.0
    code = totp_at(RFC_SECRET, now)
    used = verify_totp(RFC_SECRET, code, now=now, last_used_step=None)
    assert used == int(now) // STEP
    assert verify_totp(RFC_SECRET, code, now=now, last_used_step=used) is None
    assert verify_totp(RFC_SECRET, code, now=now + 5, last_used_step=used) is None
    # The next step's code is fine...
    later = totp_at(RFC_SECRET, now + STEP)
    assert verify_totp(RFC_SECRET, later, now=now + STEP, last_used_step=used) == used + 1
    # ...and once it is used, the older code is refused even inside the window.
    assert verify_totp(RFC_SECRET, code, now=now + STEP, last_used_step=used + 1) is None


@pytest.mark.parametrize("offset", [-1, 1])
def test_adjacent_steps_are_accepted(offset: int) -> None:
    now = 1_700_000_000.0
    code = totp_at(RFC_SECRET, now + offset * STEP)
    expected = int(now) // STEP + offset
    assert verify_totp(RFC_SECRET, code, now=now, last_used_step=None) == expected


@pytest.mark.parametrize("offset", [-2, 2, -10])
def test_steps_beyond_the_window_are_refused(offset: int) -> None:
    now = 1_700_000_000.0
    code = totp_at(RFC_SECRET, now + offset * STEP)
    assert verify_totp(RFC_SECRET, code, now=now, last_used_step=None) is None


def test_window_is_configurable() -> None:
    now = 1_700_000_000.0
    next_code = totp_at(RFC_SECRET, now + STEP)
    assert verify_totp(RFC_SECRET, next_code, now=now, last_used_step=None, window=0) is None
    two_ahead = totp_at(RFC_SECRET, now + 2 * STEP)
    assert (
        verify_totp(RFC_SECRET, two_ahead, now=now, last_used_step=None, window=2)
        == int(now) // STEP + 2
    )
    with pytest.raises(ValueError, match="window"):
        verify_totp(RFC_SECRET, next_code, now=now, last_used_step=None, window=-1)


def test_blanks_in_the_code_are_ignored() -> None:
    now = 1_700_000_000.0
    code = totp_at(RFC_SECRET, now)
    spaced = f" {code[:3]} {code[3:]}\n"
    assert verify_totp(RFC_SECRET, spaced, now=now, last_used_step=None) == int(now) // STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６", "12345-"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, now=59, last_used_step=None) is None


def test_wrong_code_is_refused() -> None:
    now = 1_700_000_000.0
    code = totp_at(RFC_SECRET, now)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert verify_totp(RFC_SECRET, wrong, now=now, last_used_step=None) is None


def test_new_secret_is_160_bits_of_base32() -> None:
    secret = new_totp_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert new_totp_secret() != secret


def test_secret_is_read_leniently_but_garbage_is_refused() -> None:
    grouped_lower = " ".join(RFC_SECRET[i : i + 4] for i in range(0, 32, 4)).lower()
    assert totp_at(grouped_lower, 59, digits=8) == "94287082"
    with pytest.raises(ValueError, match="base32"):
        totp_at("not base32!", 59)
    with pytest.raises(ValueError, match="empty"):
        totp_at("", 59)


def test_digits_outside_6_to_8_are_refused() -> None:
    for digits in (4, 5, 9, 10):
        with pytest.raises(ValueError, match="digits"):
            totp_at(RFC_SECRET, 59, digits=digits)


def test_provisioning_uri() -> None:
    uri = provisioning_uri(RFC_SECRET, account="zhang.san@example.cn", issuer="Tongban")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Tongban:zhang.san@example.cn"
    assert parse_qs(parts.query) == {
        "secret": [RFC_SECRET],
        "issuer": ["Tongban"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_provisioning_uri_percent_encodes_chinese_names() -> None:
    uri = provisioning_uri(RFC_SECRET, account="张三 13800138000", issuer="通办")
    assert uri.isascii()
    assert " " not in uri
    parts = urlsplit(uri)
    assert unquote(parts.path) == "/通办:张三 13800138000"
    assert parse_qs(parts.query)["issuer"] == ["通办"]


@pytest.mark.parametrize(("account", "issuer"), [("a:b", "Tongban"), ("a", "Tong:ban"), ("", "x")])
def test_provisioning_uri_refuses_unusable_labels(account: str, issuer: str) -> None:
    with pytest.raises(ValueError, match="issuer and account"):
        provisioning_uri(RFC_SECRET, account=account, issuer=issuer)
