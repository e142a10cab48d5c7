from orders.adapters.orm import metadata
from servicekit.alembic_env import run_alembic_env

run_alembic_env(metadata)
