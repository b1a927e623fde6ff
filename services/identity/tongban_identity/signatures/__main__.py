"""``python -m tongban_identity.signatures rotate-key``: rotate the node's document-signing key.

The active document key retires (its private half is erased; its public half stays published
for good, so what it signed still verifies) and a new key signs from now on. Reads identity's
settings from the environment (``TONGBAN_IDENTITY_DATABASE_URL``,
``TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY``, ...), like the service itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.document_keys import rotate_document_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tongban_identity.signatures", description=__doc__
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("rotate-key", help="retire the document key and make a new one")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    rotation = asyncio.run(rotate_document_keys(IdentitySettings()))
    print(f"identity: document key {rotation.active} signs now; {rotation.retired} retired")
    return 0


if __name__ == "__main__":
    sys.exit(main())
