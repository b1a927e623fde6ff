"""Validators and generators for the Chinese government identifiers Tongban handles.

* GB/T 2260 administrative division codes (six digits, e.g. ``440305``);
* GB 11643 citizen / resident identity numbers (18 characters, legacy 15 digits);
* GB 11714 organisation codes (nine characters, e.g. ``80210043-3``);
* GB 32100 unified social credit codes (USCC, 18 characters).

Every validator returns the canonical form of its input, so callers can store and
compare what it returns instead of what the user typed, and raises
:class:`InvalidIdentifier` with a reason a person can act on.

Pure standard library on purpose: these checks run in every service (forms,
event consumers, the gateway) and must not drag a dependency along.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "CENTRAL_DIVISION_CODE",
    "InvalidIdentifier",
    "birth_date_of",
    "contains",
    "generate_uscc",
    "is_central",
    "mask_resident_id",
    "province_of",
    "upgrade_legacy_resident_id",
    "uscc_division_code",
    "validate_division_code",
    "validate_organization_code",
    "validate_resident_id",
    "validate_uscc",
]


class InvalidIdentifier(ValueError):
    """An identifier failed validation; ``reason`` says why in plain words.

    Messages never echo the offending value: resident identity numbers are
    personal data and exceptions end up in logs.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() alone accepts e.g. '²' and Arabic-Indic digits, which int()
    # may or may not parse; identifiers are ASCII only.
    return text.isascii() and text.isdigit()


# --------------------------------------------------------------------------- #
# GB/T 2260 administrative division codes
# --------------------------------------------------------------------------- #

#: The code of the national (central) level, above every province.
CENTRAL_DIVISION_CODE = "100000"

# The province-level prefixes actually assigned by GB/T 2260. A plain 11-82 range
# check would let through unassigned prefixes such as 16, 20 or 70.
_PROVINCE_PREFIXES = frozenset(
    [
        *("11", "12", "13", "14", "15"),  # North China
        *("21", "22", "23"),  # Northeast
        *("31", "32", "33", "34", "35", "36", "37"),  # East China
        *("41", "42", "43", "44", "45", "46"),  # Central and South
        *("50", "51", "52", "53", "54"),  # Southwest
        *("61", "62", "63", "64", "65"),  # Northwest
        "71",  # Taiwan
        "81",  # Hong Kong
        "82",  # Macao
    ]
)


def is_central(code: str) -> bool:
    """Return whether ``code`` is the central node code ``100000``."""
    return code.strip() == CENTRAL_DIVISION_CODE


def validate_division_code(code: str, *, allow_central: bool = True) -> str:
    """Validate a GB/T 2260 division code and return it without surrounding blanks.

    The code must be six ASCII digits whose first two digits are an assigned
    province-level prefix. The central node code ``100000`` is not a division but
    is where central-level bodies are registered, so it is accepted unless
    ``allow_central`` is false.
    """
    code = code.strip()
    if len(code) != 6 or not _is_ascii_digits(code):
        raise InvalidIdentifier("division code must be exactly six digits")
    if code == CENTRAL_DIVISION_CODE:
        if not allow_central:
            raise InvalidIdentifier("the central node code 100000 is not allowed here")
        return code
    if code[:2] not in _PROVINCE_PREFIXES:
        raise InvalidIdentifier(f"{code[:2]!r} is not a province-level division prefix")
    return code


def province_of(code: str) -> str:
    """Return the province-level code (first two digits + ``0000``) containing ``code``.

    The central node code is its own apex, so ``province_of("100000") == "100000"``.
    """
    code = validate_division_code(code)
    return code[:2] + "0000"


def contains(parent: str, child: str) -> bool:
    """Return whether division ``parent`` contains division ``child``.

    A province (``xx0000``) contains every code with its two-digit prefix, a
    prefecture (``xxyy00``) every code with its four-digit prefix, and the central
    code ``100000`` contains everything. A code contains itself, so the check can
    be used directly for "is this registration within my jurisdiction".
    """
    parent = validate_division_code(parent)
    child = validate_division_code(child)
    if parent == CENTRAL_DIVISION_CODE:
        return True
    if child == CENTRAL_DIVISION_CODE:
        # Only the central node contains itself; no province contains it.
        return False
    if parent.endswith("0000"):
        return child[:2] == parent[:2]
    if parent.endswith("00"):
        return child[:4] == parent[:4]
    return child == parent


# --------------------------------------------------------------------------- #
# GB 11643 resident identity numbers
# --------------------------------------------------------------------------- #

# ISO 7064 MOD 11-2: the character at 0-based index i of the 17-digit body
# carries weight 2^(17 - i) mod 11, i.e. 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
_RID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))

# Residence permits for Hong Kong, Macao and Taiwan residents (issued since 2018)
# use 810000 / 820000 / 830000 as the address code. 83 is not a GB/T 2260 prefix
# (Taiwan is 71 there), so it is only valid in identity numbers.
_RESIDENCE_PERMIT_PREFIXES = frozenset(["81", "82", "83"])

_EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def _resident_check_char(body: str) -> str:
    total = sum(int(ch) * w for ch, w in zip(body, _RID_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _parse_birth_date(canonical: str) -> date:
    try:
        return date(int(canonical[6:10]), int(canonical[10:12]), int(canonical[12:14]))
    except ValueError:
        raise InvalidIdentifier("birth date (characters 7-14) is not a real date") from None


def _validate_resident_id_18(value: str, today: date | None) -> str:
    value = value.upper()
    if not _is_ascii_digits(value[:17]):
        raise InvalidIdentifier("the first 17 characters must be digits")
    if not (_is_ascii_digits(value[17]) or value[17] == "X"):
        raise InvalidIdentifier("the check character must be a digit or 'X'")
    prefix = value[:2]
    if prefix not in _PROVINCE_PREFIXES and prefix not in _RESIDENCE_PERMIT_PREFIXES:
        raise InvalidIdentifier(f"{prefix!r} is not a province or residence-permit prefix")
    # Semantic checks come before the checksum: a mistyped date digit also breaks
    # the checksum, and "not a real date" points the user at the actual mistake.
    born = _parse_birth_date(value)
    if born < _EARLIEST_BIRTH_DATE:
        raise InvalidIdentifier("birth date is before 1900")
    if born > (today if today is not None else date.today()):
        raise InvalidIdentifier("birth date is in the future")
    expected = _resident_check_char(value[:17])
    if value[17] != expected:
        raise InvalidIdentifier(f"check character should be {expected!r}")
    return value


def _legacy_to_18(value: str) -> str:
    if len(value) != 15 or not _is_ascii_digits(value):
        raise InvalidIdentifier("a legacy resident identity number must be 15 digits")
    # The 15-digit format (1984-1999) wrote the birth year as YY and predates
    # anyone born in 2000, so the century is always 19.
    body = value[:6] + "19" + value[6:]
    return body + _resident_check_char(body)


def upgrade_legacy_resident_id(value: str) -> str:
    """Convert a 15-digit legacy resident identity number to the 18-character form.

    Inserts the century ``19`` before the two-digit birth year, computes the
    check character, and validates the result like :func:`validate_resident_id`.
    """
    return _validate_resident_id_18(_legacy_to_18(value.strip()), None)


def validate_resident_id(value: str, *, today: date | None = None) -> str:
    """Validate a GB 11643 resident identity number; return the canonical 18-character form.

    Accepts 18 characters (17 digits and an ISO 7064 MOD 11-2 check character;
    a lower-case ``x`` is normalised to ``X``) or a 15-digit legacy number, which
    is upgraded. The birth date must be a real date between 1900-01-01 and
    ``today`` (default: the current date), and the first two digits a province
    prefix or a Hong Kong / Macao / Taiwan residence-permit prefix (81, 82, 83).
    """
    value = value.strip()
    if len(value) == 15:
        return _validate_resident_id_18(_legacy_to_18(value), today)
    if len(value) != 18:
        raise InvalidIdentifier(
            "a resident identity number must be 18 characters (or 15 digits if legacy)"
        )
    return _validate_resident_id_18(value, today)


def mask_resident_id(value: str) -> str:
    """Return the number with the birth date and sequence hidden, e.g. ``440305********123X``.

    The value is validated (and a legacy number upgraded) first, so the mask
    always has the same shape and never leaks a malformed input verbatim.
    """
    canonical = validate_resident_id(value)
    return canonical[:6] + "*" * 8 + canonical[14:]


def birth_date_of(value: str) -> date:
    """Return the birth date encoded in a (validated) resident identity number."""
    return _parse_birth_date(validate_resident_id(value))


# --------------------------------------------------------------------------- #
# GB 11714 organisation codes
# --------------------------------------------------------------------------- #

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY_ALPHABET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _org_check_char(body: str) -> str:
    # GB 11714 values digits as themselves and letters A-Z as 10-35, which is
    # exactly base-36 digit values.
    total = sum(int(ch, 36) * w for ch, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def _check_organization_code(code: str) -> str:
    if any(ch not in _ORG_BODY_ALPHABET for ch in code[:8]):
        raise InvalidIdentifier(
            "the first 8 characters of an organisation code must be digits or letters"
        )
    expected = _org_check_char(code[:8])
    if code[8] != expected:
        raise InvalidIdentifier(f"organisation code check character should be {expected!r}")
    return code


def validate_organization_code(value: str) -> str:
    """Validate a GB 11714 organisation code; return its 9-character form without hyphen.

    Accepts ``XXXXXXXX-C`` (as printed on certificates) or ``XXXXXXXXC``;
    letters are upper-cased.
    """
    code = value.strip().upper()
    if len(code) == 10 and code[8] == "-":
        code = code[:8] + code[9]
    if len(code) != 9:
        raise InvalidIdentifier("an organisation code must be 9 characters (hyphen optional)")
    return _check_organization_code(code)


# --------------------------------------------------------------------------- #
# GB 32100 unified social credit codes
# --------------------------------------------------------------------------- #

# I, O, Z, S and V are never used: they are too easily misread as 1, 0, 2, 5 and U.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_INDEX = {ch: i for i, ch in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# Registration authorities: 1-9 (organisation establishment, foreign affairs,
# justice, culture, civil affairs, tourism, religion, trade unions, market
# regulation), A (the CMC organisation office), N (agriculture: rural collective
# economic organisations, which do hold USCCs, so refusing N refuses real codes)
# and Y (others). B-G are not in the published table; the platform accepts them
# so that a newly assigned authority letter does not need a code change.
_REGISTRATION_AUTHORITIES = frozenset("123456789ABCDEFGNY")

# Largest serial generate_uscc() can encode: 8 base-31 characters.
_MAX_SERIAL = len(_USCC_ALPHABET) ** 8 - 1


def _uscc_check_char(body: str) -> str:
    total = sum(_USCC_INDEX[ch] * w for ch, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Validate a GB 32100 unified social credit code; return its canonical form.

    Blanks are removed and letters upper-cased. Checks the alphabet, the
    registration authority code (position 1), the registration division code
    (positions 3-8), the GB 11714 organisation code (positions 9-17, including its
    own check character) and the MOD 31 check character (position 18).
    """
    code = "".join(value.split()).upper()
    if len(code) != 18:
        raise InvalidIdentifier("a unified social credit code must be 18 characters")
    bad = sorted({ch for ch in code if ch not in _USCC_INDEX})
    if bad:
        raise InvalidIdentifier(
            f"characters {''.join(bad)!r} are not allowed (letters I, O, S, V, Z are never used)"
        )
    if code[0] not in _REGISTRATION_AUTHORITIES:
        raise InvalidIdentifier(f"{code[0]!r} is not a registration authority code")
    # Position 2 (organisation category) is defined per authority and may be a
    # digit or a letter, so beyond the alphabet there is nothing to check.
    try:
        validate_division_code(code[2:8])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"characters 3-8: {exc.reason}") from None
    _check_organization_code(code[8:17])
    expected = _uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(f"check character should be {expected!r}")
    return code


def uscc_division_code(value: str) -> str:
    """Return the registration division code (positions 3-8) of a validated USCC."""
    return validate_uscc(value)[2:8]


def generate_uscc(
    *,
    division_code: str,
    registration_authority: str = "9",
    category: str = "1",
    serial: int,
) -> str:
    """Build a valid USCC deterministically from ``serial``.

    The 8-character organisation-code body is ``serial`` written in base 31 over
    the USCC alphabet (zero-padded), so distinct serials give distinct codes for
    the same authority, category and division. ``serial`` must be in
    ``1 .. 31**8 - 1``; 0 is refused because it would produce the organisation
    code ``000000000``, which legacy data uses as an "unknown" placeholder.
    """
    division_code = validate_division_code(division_code)
    if registration_authority not in _REGISTRATION_AUTHORITIES:
        raise InvalidIdentifier(f"{registration_authority!r} is not a registration authority code")
    if len(category) != 1 or category not in _USCC_INDEX:
        raise InvalidIdentifier("the organisation category must be one USCC character")
    if not 1 <= serial <= _MAX_SERIAL:
        raise InvalidIdentifier(f"serial must be between 1 and {_MAX_SERIAL}")
    digits = []
    remaining = serial
    for _ in range(8):
        remaining, digit = divmod(remaining, len(_USCC_ALPHABET))
        digits.append(_USCC_ALPHABET[digit])
    body = "".join(reversed(digits))
    # The GB 11714 check of a body drawn from the USCC alphabet is 0-9 or X,
    # all of which are themselves in the USCC alphabet.
    org_code = body + _org_check_char(body)
    partial = registration_authority + category + division_code + org_code
    return partial + _uscc_check_char(partial)
