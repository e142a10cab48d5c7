from servicekit.alembic_env import run_alembic_env
from slicer.adapters.orm import metadata

run_alembic_env(metadata)
