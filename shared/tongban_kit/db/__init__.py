"""Database plumbing: metadata conventions, engines, the request session, migrations."""

from tongban_kit.db.base import NAMING_CONVENTION, new_metadata
from tongban_kit.db.engine import build_engine, build_sessionmaker, in_transaction
from tongban_kit.db.session import SessionDep, get_session

__all__ = [
    "NAMING_CONVENTION",
    "SessionDep",
    "build_engine",
    "build_sessionmaker",
    "get_session",
    "in_transaction",
    "new_metadata",
]
