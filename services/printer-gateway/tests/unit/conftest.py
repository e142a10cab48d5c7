"""Lets the printer gateway's unit tests import their in-memory fakes (`printer_gateway_fakes`) beside them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
