from tongban_exchange.models import Base
from tongban_kit.db.migrations import run_env

run_env(Base.metadata)
