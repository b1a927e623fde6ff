from tongban_kit.db.migrations import run_env
from tongban_registration.models import Base

run_env(Base.metadata)
