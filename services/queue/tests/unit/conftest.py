"""Lets the queue unit tests import their in-memory fakes (`queue_fakes`) beside them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
