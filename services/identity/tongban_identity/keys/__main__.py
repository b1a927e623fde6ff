"""``python -m tongban_identity.keys rotate``: rotate the node's token signing keys now.

Reads identity's settings from the environment (``TONGBAN_IDENTITY_DATABASE_URL``,
``TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY``, ...), like the service itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from tongban_identity.keys.service import rotate_keys
from tongban_identity.settings import IdentitySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tongban_identity.keys", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "rotate", help="next key signs from now on, active key retires, a new next key is made"
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = IdentitySettings()
    keys = asyncio.run(rotate_keys(settings.database_url, settings))
    print(f"identity: key {keys.active} signs now; {keys.next} is next; {keys.retired} retired")
    return 0


if __name__ == "__main__":
    sys.exit(main())
