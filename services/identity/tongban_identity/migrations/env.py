import tongban_identity.keys.models  # noqa: F401 -- registers signing_keys on Base.metadata
from tongban_identity.models import Base
from tongban_kit.db.migrations import run_env

run_env(Base.metadata)
