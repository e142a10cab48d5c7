"""Pipeline tests with the real `openscad` and `prusa-slicer` binaries (no NATS or database needed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from slicer.adapters.limited_process import ToolLimits
from slicer.service_layer.pipeline import SlicePipeline, build_pipeline

MISSING = [tool for tool in ("openscad", "prusa-slicer") if shutil.which(tool) is None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"not installed: {', '.join(MISSING)} (apt-get install openscad prusa-slicer)")
    for item in items:
        if "slicer/tests/integration" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def pipeline(tmp_path: Path) -> SlicePipeline:
    return build_pipeline(None, tmp_path / "work", ToolLimits(time_limit_seconds=120, memory_limit_mb=2048))
