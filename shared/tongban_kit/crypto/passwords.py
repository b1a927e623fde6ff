"""Password hashing with argon2id (via argon2-cffi).

The defaults are OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, one
lane. They can be raised through the constructor; lowering them is for tests only.
Hashes are PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``) that carry
their own parameters, so raising the parameters later needs no migration: check
:meth:`PasswordHasher.needs_rehash` after a successful login and store a new hash.
"""

from __future__ import annotations

import secrets
import threading

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_PASSWORD_LENGTH", "PasswordHasher"]

#: Longest password accepted, in characters. Long enough for any passphrase or
#: password manager; the cap keeps a megabyte-sized "password" from costing CPU.
MAX_PASSWORD_LENGTH = 1024

# Stored hashes come from our own database, but one claiming e.g. 4 GiB of memory
# would make a single login allocate that much (argon2 trusts the string), so
# verify() refuses anything far beyond what this platform would ever configure.
_MAX_MEMORY_COST_KIB = 1024 * 1024  # 1 GiB
_MAX_TIME_COST = 32
_MAX_PARALLELISM = 64


class PasswordHasher:
    """Hashes and verifies passwords with argon2id.

    ``memory_cost`` is in KiB. :meth:`verify` and :meth:`dummy_verify` never raise
    for a wrong or unacceptable password or an unreadable hash; :meth:`hash`
    raises ``ValueError`` for an unacceptable password.
    """

    def __init__(
        self,
        *,
        memory_cost: int = 19456,
        time_cost: int = 2,
        parallelism: int = 1,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """Return the argon2id PHC string of ``password`` with a fresh random salt.

        Raises ``ValueError`` for a password over :data:`MAX_PASSWORD_LENGTH`
        characters or one that is not valid Unicode text (a lone surrogate, such
        as JSON's ``"\\udcff"`` decodes to).
        """
        _check_password(password)
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Return whether ``password`` matches ``stored_hash``.

        False, never an exception, for a mismatch, a malformed or unsupported
        hash (an empty string, a bcrypt hash from an import), or a password
        :meth:`hash` would refuse (no such password can have been stored).
        """
        try:
            _check_password(password)
        except ValueError:
            return False
        if not _is_phc_text(stored_hash):
            return False
        try:
            params = argon2.extract_parameters(stored_hash)
        except InvalidHashError:
            return False
        if (
            params.memory_cost > _MAX_MEMORY_COST_KIB
            or params.time_cost > _MAX_TIME_COST
            or params.parallelism > _MAX_PARALLELISM
        ):
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError; the rest of that family
            # are hashes the C library cannot decode.
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Return whether ``stored_hash`` was made with other than the current parameters.

        Call after a successful :meth:`verify`, while the plaintext is at hand, and
        store :meth:`hash` of it if so. Any difference counts (type, memory, time,
        lanes, lengths), so lowering the configuration also rehashes; a hash that
        cannot be parsed needs rehashing too.
        """
        if not _is_phc_text(stored_hash):
            return True
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a failed :meth:`verify` without checking anything.

        Call it when a login names an account that does not exist, so that the
        response time does not tell an attacker which accounts exist. It verifies
        against a hash of a random password made with the current parameters,
        computed on first use (so the first call costs one hash more).
        """
        try:
            _check_password(password)
        except ValueError:
            # verify() answers these at once too, for known accounts as well.
            return
        self.verify(self._get_dummy_hash(), password)

    def _get_dummy_hash(self) -> str:
        if self._dummy_hash is None:
            # The lock keeps concurrent first logins from each paying for a hash.
            with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy_hash


def _is_phc_text(stored_hash: str) -> bool:
    # PHC strings are printable ASCII. argon2-cffi raises UnicodeEncodeError on
    # anything else, and the C library would stop reading at an embedded NUL.
    return stored_hash.isascii() and stored_hash.isprintable()


def _check_password(password: str) -> None:
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password may be at most {MAX_PASSWORD_LENGTH} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a password must be valid Unicode text") from None
