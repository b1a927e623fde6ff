# Imported so their tables register on Base.metadata.
import tongban_identity.audit.models
import tongban_identity.departments.models
import tongban_identity.keys.models
import tongban_identity.legal_persons.models
import tongban_identity.nodes.models
import tongban_identity.pairwise.models
import tongban_identity.persons.models
import tongban_identity.sessions.models
import tongban_identity.signatures.models  # noqa: F401
from tongban_identity.models import Base
from tongban_kit.db.migrations import run_env

run_env(Base.metadata)
