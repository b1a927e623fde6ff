"""Tests for tongban_kit.identifiers.

python-stdnum (stdnum.cn.ric, stdnum.cn.uscc) is used as an independent oracle.
Where our verdict and stdnum's differ, the difference is asserted explicitly and
explained in a comment marked "Known disagreement with stdnum" (or "stdnum bug").
"""

from __future__ import annotations

import random
import string
from datetime import date, timedelta
from typing import Any

import pytest
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from tongban_kit.identifiers import (
    CENTRAL_DIVISION_CODE,
    InvalidIdentifier,
    birth_date_of,
    contains,
    generate_uscc,
    is_central,
    mask_resident_id,
    province_of,
    upgrade_legacy_resident_id,
    uscc_division_code,
    validate_division_code,
    validate_organization_code,
    validate_resident_id,
    validate_uscc,
)

TODAY = date(2025, 6, 1)

PROVINCE_PREFIXES = [
    *("11", "12", "13", "14", "15"),
    *("21", "22", "23"),
    *("31", "32", "33", "34", "35", "36", "37"),
    *("41", "42", "43", "44", "45", "46"),
    *("50", "51", "52", "53", "54"),
    *("61", "62", "63", "64", "65"),
    *("71", "81", "82"),
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def rid(area: str, birth: str, seq: str) -> str:
    """Build an 18-digit resident id with stdnum's check digit (independent of ours)."""
    body = area + birth + seq
    return body + stdnum_ric.calc_check_digit(body + "0")


def ours_ric(number: str) -> str | None:
    """Our verdict: None when accepted, else the reason."""
    try:
        validate_resident_id(number, today=TODAY)
    except InvalidIdentifier as exc:
        return exc.reason
    return None


def ours_uscc(code: str) -> str | None:
    try:
        validate_uscc(code)
    except InvalidIdentifier as exc:
        return exc.reason
    return None


# --------------------------------------------------------------------------- #
# Division codes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "code", ["110000", "110101", "440300", "440305", "650100", "710000", "810000", "820000"]
)
def test_division_code_accepts_real_codes(code: str) -> None:
    assert validate_division_code(code) == code
    assert validate_division_code(f" {code}\n") == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "44030",
        "4403050",
        "44030a",
        "160000",  # 16-19 are unassigned
        "200000",
        "240000",
        "470000",
        "700000",
        "720000",
        "830000",  # 83 only exists as a residence-permit prefix, not in GB/T 2260
        "990000",
        "000000",
        "４４０３０５",  # full-width digits: str.isdigit() is True, but not ASCII
        "٤٤٠٣٠٥",  # Arabic-Indic digits
    ],
)
def test_division_code_rejects(code: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_division_code(code)


def test_central_code() -> None:
    assert CENTRAL_DIVISION_CODE == "100000"
    assert is_central("100000")
    assert not is_central("110000")
    assert validate_division_code("100000") == "100000"
    with pytest.raises(InvalidIdentifier, match="central"):
        validate_division_code("100000", allow_central=False)
    assert validate_division_code("440305", allow_central=False) == "440305"


def test_province_of() -> None:
    assert province_of("440305") == "440000"
    assert province_of("440300") == "440000"
    assert province_of("440000") == "440000"
    assert province_of("820000") == "820000"
    assert province_of("100000") == "100000"
    with pytest.raises(InvalidIdentifier):
        province_of("160101")


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        ("440000", "440300", True),
        ("440000", "440305", True),
        ("440300", "440305", True),
        ("100000", "440305", True),
        ("100000", "440000", True),
        ("100000", "820000", True),
        ("100000", "100000", True),
        ("440305", "440305", True),  # reflexive: a body has jurisdiction over itself
        ("440300", "440300", True),
        ("440000", "440000", True),
        ("440300", "440000", False),
        ("440305", "440300", False),
        ("440300", "440400", False),
        ("440300", "440405", False),
        ("440305", "440306", False),
        ("110000", "440305", False),
        ("440000", "100000", False),
        ("440300", "100000", False),
    ],
)
def test_contains(parent: str, child: str, expected: bool) -> None:
    assert contains(parent, child) is expected


def test_contains_validates_both_codes() -> None:
    with pytest.raises(InvalidIdentifier):
        contains("440000", "16000")
    with pytest.raises(InvalidIdentifier):
        contains("990000", "440305")


# --------------------------------------------------------------------------- #
# Resident identity numbers
# --------------------------------------------------------------------------- #

GOOD_RID = "44030519900101123X"


def test_good_resident_id_agrees_with_stdnum() -> None:
    assert stdnum_ric.validate(GOOD_RID) == GOOD_RID
    assert validate_resident_id(GOOD_RID) == GOOD_RID
    # stdnum's own documentation example
    assert validate_resident_id("360426199101010071") == "360426199101010071"


def test_lowercase_x_and_blanks_normalised() -> None:
    assert validate_resident_id("44030519900101123x") == GOOD_RID
    assert validate_resident_id("  44030519900101123x\t") == GOOD_RID


@pytest.mark.parametrize("wrong", [*"0123456789"])
def test_corrupted_check_char_refused_with_reason(wrong: str) -> None:
    number = GOOD_RID[:17] + wrong
    with pytest.raises(InvalidIdentifier, match="check character should be 'X'") as info:
        validate_resident_id(number)
    assert info.value.reason == "check character should be 'X'"
    assert isinstance(info.value, ValueError)
    assert not stdnum_ric.is_valid(number)


def test_error_messages_do_not_leak_the_number() -> None:
    for bad in (GOOD_RID[:17] + "1", "44030519900230123X", "4403051990010112"):
        with pytest.raises(InvalidIdentifier) as info:
            validate_resident_id(bad)
        assert bad[:10] not in str(info.value)


def test_future_birth_date_refused() -> None:
    tomorrow = TODAY + timedelta(days=1)
    number = rid("440305", tomorrow.strftime("%Y%m%d"), "123")
    with pytest.raises(InvalidIdentifier, match="future"):
        validate_resident_id(number, today=TODAY)
    # The same number is fine once that day has come.
    assert validate_resident_id(number, today=tomorrow) == number
    born_today = rid("440305", TODAY.strftime("%Y%m%d"), "123")
    assert validate_resident_id(born_today, today=TODAY) == born_today
    # Default "today" is the real current date.
    far_future = rid("440305", "29990101", "123")
    with pytest.raises(InvalidIdentifier, match="future"):
        validate_resident_id(far_future)


def test_birth_before_1900_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="1900"):
        validate_resident_id(rid("440305", "18991231", "123"))
    number = rid("440305", "19000101", "123")
    assert validate_resident_id(number) == number


@pytest.mark.parametrize("birth", ["19900230", "19900231", "19900431", "19001329", "19900000"])
def test_impossible_birth_dates_refused(birth: str) -> None:
    with pytest.raises(InvalidIdentifier, match="not a real date"):
        validate_resident_id(rid("440305", birth, "123"))


def test_leap_days() -> None:
    assert validate_resident_id(rid("440305", "20000229", "123"))
    assert validate_resident_id(rid("440305", "19960229", "123"))
    with pytest.raises(InvalidIdentifier, match="not a real date"):
        validate_resident_id(rid("440305", "19000229", "123"))  # 1900 was not a leap year
    with pytest.raises(InvalidIdentifier, match="not a real date"):
        validate_resident_id(rid("440305", "19990229", "123"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "18 characters"),
        ("44030519900101123", "18 characters"),
        ("44030519900101123X0", "18 characters"),
        ("4403051990010112A0", "first 17"),
        ("44030519900101123Y", "digit or 'X'"),
        ("X4030519900101123X", "first 17"),
        ("４４0305199001011230", "first 17"),
    ],
)
def test_malformed_resident_ids(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_resident_id(value)


@pytest.mark.parametrize("prefix", ["00", "10", "16", "20", "47", "70", "72", "80", "84", "99"])
def test_unknown_prefix_refused(prefix: str) -> None:
    with pytest.raises(InvalidIdentifier, match="prefix"):
        validate_resident_id(rid(prefix + "0101", "19900101", "123"))


@pytest.mark.parametrize("prefix", PROVINCE_PREFIXES)
def test_every_province_prefix_accepted(prefix: str) -> None:
    number = rid(prefix + "0101", "19900101", "123")
    assert validate_resident_id(number) == number


@pytest.mark.parametrize("area", ["810000", "820000", "830000"])
def test_residence_permit_prefixes_accepted(area: str) -> None:
    number = rid(area, "19650315", "004")
    assert validate_resident_id(number) == number
    # Known disagreement with stdnum: residence permits (issued since 2018 to
    # Hong Kong / Macao / Taiwan residents) use 810000 / 820000 / 830000.
    # stdnum refuses all three for someone born in 1965: 830000 is not in its
    # GB/T 2260 table at all, and it only accepts 810000 / 820000 for people
    # born after the 1997 / 1999 handovers, because it requires the address code
    # to have existed in the *birth* year. A permit holder's code is assigned at
    # issue, not at birth, so we follow GB 11643 and the permit rules instead.
    assert not stdnum_ric.is_valid(number)
    with pytest.raises(stdnum_exc.InvalidComponent):
        stdnum_ric.get_birth_place(number)


def test_stdnum_birth_year_heuristic_rejects_real_numbers() -> None:
    # Known disagreement with stdnum: 110112 (Tongzhou District, Beijing) exists
    # since 1997. stdnum refuses it for anyone born before 1997, but the address
    # code records where the number was first assigned (household registration),
    # which for many people is years after birth; stdnum's own docs warn the
    # date "may be the registration date". We do not check county tables at all:
    # GB/T 2260 changes every year and a stale table refuses real people.
    born_1990 = rid("110112", "19900101", "001")
    born_2000 = rid("110112", "20000101", "001")
    assert validate_resident_id(born_1990) == born_1990
    assert not stdnum_ric.is_valid(born_1990)
    assert stdnum_ric.is_valid(born_2000)
    assert validate_resident_id(born_2000) == born_2000


def test_upgrade_legacy_resident_id() -> None:
    legacy = "440305900101123"
    assert upgrade_legacy_resident_id(legacy) == GOOD_RID
    assert upgrade_legacy_resident_id(f" {legacy} ") == GOOD_RID
    assert validate_resident_id(legacy) == GOOD_RID
    assert stdnum_ric.is_valid(upgrade_legacy_resident_id("360426910101007"))


@pytest.mark.parametrize(
    ("legacy", "reason"),
    [
        ("44030590010112", "15 digits"),
        ("44030590010112X", "15 digits"),
        ("440305900230123", "not a real date"),
        ("160305900101123", "prefix"),
    ],
)
def test_upgrade_legacy_refuses_invalid(legacy: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        upgrade_legacy_resident_id(legacy)


def test_upgrade_legacy_random_against_stdnum() -> None:
    rng = random.Random(11643)
    for _ in range(500):
        born = date(1900, 1, 1) + timedelta(days=rng.randrange(36524))
        legacy = "110101" + born.strftime("%y%m%d") + f"{rng.randrange(1000):03d}"
        full = upgrade_legacy_resident_id(legacy)
        assert len(full) == 18
        assert full[:6] + full[8:17] == legacy
        assert full[6:8] == "19"
        assert full[17] == stdnum_ric.calc_check_digit(full)
        assert birth_date_of(legacy) == born
        # 110101 (Dongcheng) has existed throughout, so stdnum agrees fully.
        assert stdnum_ric.validate(full) == full


def test_mask_resident_id() -> None:
    assert mask_resident_id(GOOD_RID) == "440305********123X"
    assert mask_resident_id("44030519900101123x") == "440305********123X"
    assert mask_resident_id("440305900101123") == "440305********123X"
    with pytest.raises(InvalidIdentifier):
        mask_resident_id("440305199001011231")


def test_birth_date_of() -> None:
    assert birth_date_of(GOOD_RID) == date(1990, 1, 1)
    number = rid("830000", "20010911", "002")
    assert birth_date_of(number) == date(2001, 9, 11)
    assert birth_date_of(number) == stdnum_ric.get_birth_date(number)
    with pytest.raises(InvalidIdentifier):
        birth_date_of("44030519900230123X")


# Codes that stdnum's table lists without a validity window (many codes there
# only start in 1983, the first year of its source list), so stdnum accepts them
# for every birth year drawn below.
STABLE_AREAS = ["110101", "110102", "120101", "310104", "330122", "350121", "430121"]


def stdnum_ric_is_valid(number: str) -> bool:
    # stdnum bug (2.2): when its table knows the prefecture but not the county
    # (e.g. 610151...), get_birth_place() raises KeyError('county') instead of a
    # ValidationError, so is_valid() crashes rather than returning False.
    try:
        return stdnum_ric.is_valid(number)
    except KeyError:
        return False


def test_random_valid_resident_ids_agree_with_stdnum() -> None:
    rng = random.Random(2260)
    for _ in range(2000):
        area = rng.choice(STABLE_AREAS)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(27000))
        number = rid(area, born.strftime("%Y%m%d"), f"{rng.randrange(1000):03d}")
        assert stdnum_ric.validate(number) == number
        assert validate_resident_id(number, today=TODAY) == number
        assert validate_resident_id(number.lower(), today=TODAY) == number
        assert birth_date_of(number) == stdnum_ric.get_birth_date(number) == born


def _random_candidate(rng: random.Random) -> str:
    prefix = rng.choice([*PROVINCE_PREFIXES, "83", "16", "70", "99"])
    area = prefix + f"{rng.randrange(10000):04d}"
    birth = f"{rng.randrange(1880, 2040)}{rng.randrange(0, 14):02d}{rng.randrange(0, 33):02d}"
    body = area + birth + f"{rng.randrange(1000):03d}"
    if rng.random() < 0.6:
        return body + stdnum_ric.calc_check_digit(body + "0")
    return body + rng.choice("0123456789X")


def test_random_resident_id_verdicts_against_stdnum() -> None:
    """Compare verdicts on a random mix; every disagreement must be a known one."""
    rng = random.Random(7064)
    tally = {"both accept": 0, "both reject": 0, "stdnum table": 0, "date range": 0}
    for _ in range(20000):
        number = _random_candidate(rng)
        ours = ours_ric(number)
        theirs = stdnum_ric_is_valid(number)
        if ours is None and theirs:
            tally["both accept"] += 1
        elif ours is not None and not theirs:
            tally["both reject"] += 1
        elif ours is None:
            # We accept, stdnum refuses: the only allowed cause is stdnum's
            # birth-place table (unknown or not-yet/no-longer-assigned county);
            # checksum and date must be fine by stdnum's own functions.
            assert stdnum_ric.calc_check_digit(number) == number[-1]
            stdnum_ric.get_birth_date(number)
            with pytest.raises((stdnum_exc.InvalidComponent, KeyError)):
                stdnum_ric.get_birth_place(number)
            tally["stdnum table"] += 1
        else:
            # stdnum accepts, we refuse: stdnum has no notion of a future birth
            # date or of the 1900 lower bound.
            assert ours in ("birth date is in the future", "birth date is before 1900")
            tally["date range"] += 1
    assert all(count > 0 for count in tally.values()), tally


def test_every_single_substitution_and_transposition_detected() -> None:
    rng = random.Random(17)
    for _ in range(100):
        area = rng.choice(STABLE_AREAS)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(27000))
        number = rid(area, born.strftime("%Y%m%d"), f"{rng.randrange(1000):03d}")
        for i in range(18):
            for ch in "0123456789X" if i == 17 else string.digits:
                if ch != number[i]:
                    corrupted = number[:i] + ch + number[i + 1 :]
                    assert ours_ric(corrupted) is not None
                    assert not stdnum_ric_is_valid(corrupted)
        for i in range(17):
            if number[i] != number[i + 1]:
                swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
                assert ours_ric(swapped) is not None
                assert not stdnum_ric_is_valid(swapped)


# --------------------------------------------------------------------------- #
# Organisation codes (GB 11714)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("802100433", "802100433"),
        ("80210043-3", "802100433"),
        ("M000100Y-4", "M000100Y4"),
        ("m000100y4", "M000100Y4"),
        (" 60003734-1 ", "600037341"),
        ("MA31E12P-X", "MA31E12PX"),  # check value 10 -> 'X'
        ("MA31DKY80", "MA31DKY80"),  # check value 11 -> '0'
        ("59498494-X", "59498494X"),
    ],
)
def test_organization_code_valid(value: str, canonical: str) -> None:
    assert validate_organization_code(value) == canonical


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("802100434", "check character should be '3'"),
        ("80210043-X", "check character should be '3'"),
        ("MA31E12P0", "check character should be 'X'"),
        ("MA31DKY8X", "check character should be '0'"),
        ("80210043", "9 characters"),
        ("8021004-33", "9 characters"),
        ("80210043--3", "9 characters"),
        ("8021004!3", "digits or letters"),
    ],
)
def test_organization_code_invalid(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_organization_code(value)


# --------------------------------------------------------------------------- #
# Unified social credit codes (GB 32100)
# --------------------------------------------------------------------------- #

# Published codes of real organisations (business registrations are public).
REAL_USCCS = [
    "91350100M000100Y43",
    "91110000802100433B",
    "91110000600037341L",
    "91230184MA1BUFLT44",
    "92371000MA3MXH0E3W",  # 92: individual business
    "91350200MA31E12PXF",  # organisation code check 'X'
    "91350503MA31DKY80A",  # organisation code check '0'
    "9135021359498494XQ",
    "123502001549897397",  # 12: public institution registered by 机构编制
    "91350213678251743X",
    "91440101MA5CJQ4N59",
]


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_usccs_accepted(code: str) -> None:
    assert stdnum_uscc.validate(code) == code
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code
    assert uscc_division_code(code) == code[2:8]


def test_uscc_blanks_removed_and_upper_cased() -> None:
    assert validate_uscc(" 9135 0100 m000100y4 3\n") == "91350100M000100Y43"


def test_uscc_division_code() -> None:
    assert uscc_division_code("91350100M000100Y43") == "350100"
    assert uscc_division_code("91110000802100433B") == "110000"
    with pytest.raises(InvalidIdentifier):
        uscc_division_code("91350100M000100Y44")


def test_uscc_corrupted_check_char_refused_with_reason() -> None:
    with pytest.raises(InvalidIdentifier, match="check character should be '3'") as info:
        validate_uscc("91350100M000100Y4A")
    assert info.value.reason == "check character should be '3'"
    with pytest.raises(InvalidIdentifier, match="check character should be 'B'"):
        validate_uscc("91110000802100433C")


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_uscc_forbidden_letters(letter: str) -> None:
    with pytest.raises(InvalidIdentifier, match="not allowed"):
        validate_uscc("91350100M000100" + letter + "43")
    assert not stdnum_uscc.is_valid("91350100M000100" + letter + "43")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "18 characters"),
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y433", "18 characters"),
        ("91350100M000100Y4-", "not allowed"),
    ],
)
def test_uscc_malformed(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_uscc(value)


def with_uscc_check(partial: str) -> str:
    """Append stdnum's USCC check char to a 17-character prefix."""
    return partial + stdnum_uscc.calc_check_digit(partial + "0")


def test_uscc_inner_organisation_check_enforced() -> None:
    # Known disagreement with stdnum: stdnum only checks the outer MOD 31 check
    # character. GB 32100 embeds a GB 11714 organisation code (positions 9-17)
    # with its own check character; every real code above satisfies it, so a
    # code whose outer check is right but inner check is wrong is malformed.
    code = with_uscc_check("91350100M000100Y5")
    assert stdnum_uscc.is_valid(code)
    with pytest.raises(InvalidIdentifier, match="organisation code check character should be '4'"):
        validate_uscc(code)


@pytest.mark.parametrize("authority", ["0", "H", "J", "X", "W"])
def test_uscc_unknown_registration_authority(authority: str) -> None:
    code = with_uscc_check(authority + "1350100M000100Y4")
    with pytest.raises(InvalidIdentifier, match="registration authority"):
        validate_uscc(code)


@pytest.mark.parametrize("authority", ["A", "N", "Y"])
def test_uscc_letter_registration_authorities(authority: str) -> None:
    code = with_uscc_check(authority + "1350100M000100Y4")
    assert validate_uscc(code) == code
    # Known disagreement with stdnum: it requires the first 8 characters to be
    # digits, so it refuses the letter authorities of GB 32100 (A: CMC
    # organisation office, N: agriculture / rural collective economic
    # organisations, Y: others) that the standard defines.
    with pytest.raises(stdnum_exc.InvalidFormat):
        stdnum_uscc.validate(code)


@pytest.mark.parametrize("division", ["160000", "000000", "830000", "990100"])
def test_uscc_division_code_checked(division: str) -> None:
    code = with_uscc_check("91" + division + "M000100Y4")
    with pytest.raises(InvalidIdentifier, match="characters 3-8"):
        validate_uscc(code)
    # Known disagreement with stdnum: it does not look at the division code.
    assert stdnum_uscc.is_valid(code)


def test_uscc_central_division_accepted() -> None:
    code = with_uscc_check("11100000M000100Y4")
    assert validate_uscc(code) == code
    assert uscc_division_code(code) == "100000"


def test_uscc_every_single_substitution_detected() -> None:
    for code in REAL_USCCS:
        for i in range(18):
            for ch in USCC_ALPHABET:
                if ch != code[i]:
                    corrupted = code[:i] + ch + code[i + 1 :]
                    assert ours_uscc(corrupted) is not None
                    assert not stdnum_uscc.is_valid(corrupted)


def _org_check(body: str) -> str:
    # Independent re-statement of GB 11714 for building test data.
    check = (
        11 - sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    )
    return {10: "X", 11: "0"}.get(check, str(check))


def test_random_usccs_against_stdnum() -> None:
    """Random well-formed USCCs: our verdict vs stdnum's, disagreements explained."""
    rng = random.Random(32100)
    tally = {"both accept": 0, "both reject": 0, "ours stricter": 0}
    for _ in range(20000):
        prefix = rng.choice([*PROVINCE_PREFIXES, "10", "16", "99"])
        division = prefix + rng.choice(["0000", "0100", "0105"])
        body = "".join(rng.choice(USCC_ALPHABET) for _ in range(8))
        inner = _org_check(body) if rng.random() < 0.7 else rng.choice("0123456789X")
        partial = rng.choice("123456789") + rng.choice("1239") + division + body + inner
        code = partial + stdnum_uscc.calc_check_digit(partial + "0")
        if rng.random() < 0.2:
            code = code[:17] + rng.choice(USCC_ALPHABET)
        ours = ours_uscc(code)
        theirs = stdnum_uscc.is_valid(code)
        if ours is None:
            # Everything we accept (with a digit authority) stdnum accepts too.
            assert theirs, code
            tally["both accept"] += 1
        elif not theirs:
            tally["both reject"] += 1
        else:
            # stdnum checks only alphabet and the outer check character; we
            # additionally check the division code and the GB 11714 inner check.
            assert ours.startswith(("characters 3-8", "organisation code check character")), ours
            tally["ours stricter"] += 1
    assert all(count > 0 for count in tally.values()), tally


DIVISIONS = ["110000", "110101", "310115", "440300", "440305", "650102", "820000", "100000"]


def test_generate_uscc_validated_by_stdnum_and_distinct() -> None:
    seen: set[str] = set()
    serials = [*range(1, 400), *random.Random(5).sample(range(1, 31**8), 400), 31**8 - 1]
    for division in DIVISIONS:
        for serial in serials:
            code = generate_uscc(division_code=division, serial=serial)
            assert stdnum_uscc.validate(code) == code
            assert validate_uscc(code) == code
            assert code[:2] == "91"
            assert uscc_division_code(code) == division
            assert validate_organization_code(code[8:17]) == code[8:17]
            assert code not in seen
            seen.add(code)
    assert len(seen) == len(DIVISIONS) * len(serials)


def test_generate_uscc_is_deterministic() -> None:
    first = generate_uscc(division_code="440305", serial=123456)
    assert first == generate_uscc(division_code="440305", serial=123456)
    assert first != generate_uscc(division_code="440305", serial=123457)


@pytest.mark.parametrize(
    ("authority", "category"), [("1", "2"), ("5", "3"), ("9", "2"), ("N", "2")]
)
def test_generate_uscc_other_authorities(authority: str, category: str) -> None:
    for serial in range(1, 200):
        code = generate_uscc(
            division_code="350100",
            registration_authority=authority,
            category=category,
            serial=serial,
        )
        assert code[:2] == authority + category
        assert validate_uscc(code) == code
        if authority.isdigit():
            assert stdnum_uscc.validate(code) == code
        else:
            # Letter authorities: see test_uscc_letter_registration_authorities.
            assert stdnum_uscc.calc_check_digit(code) == code[-1]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"division_code": "440305", "serial": 0}, "serial"),
        ({"division_code": "440305", "serial": -1}, "serial"),
        ({"division_code": "440305", "serial": 31**8}, "serial"),
        ({"division_code": "160000", "serial": 1}, "prefix"),
        ({"division_code": "44030", "serial": 1}, "six digits"),
        ({"division_code": "440305", "serial": 1, "registration_authority": "H"}, "authority"),
        ({"division_code": "440305", "serial": 1, "registration_authority": "91"}, "authority"),
        ({"division_code": "440305", "serial": 1, "category": "I"}, "category"),
        ({"division_code": "440305", "serial": 1, "category": "12"}, "category"),
        ({"division_code": "440305", "serial": 1, "category": ""}, "category"),
    ],
)
def test_generate_uscc_rejects_bad_arguments(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        generate_uscc(**kwargs)
