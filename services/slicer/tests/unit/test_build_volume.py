"""A part must fit the printer's bed and height; one that fits only turned is turned."""

from __future__ import annotations

import pytest

from slicer.domain.build_volume import MeshInfo, placement_rotation
from slicer.domain.errors import SliceError
from slicer.domain.profiles import Bed

BED = Bed(0, 0, 256, 256, 250)
NARROW = Bed(25, 0, 325, 320, 325)


def mesh(x: float, y: float, z: float, facets: int = 12) -> MeshInfo:
    return MeshInfo(size_x=x, size_y=y, size_z=z, facets=facets)


def test_fits() -> None:
    assert placement_rotation(mesh(20, 20, 5), BED, "X1C") == 0
    assert placement_rotation(mesh(256, 256, 250), BED, "X1C") == 0


def test_turned_when_only_the_turned_footprint_fits() -> None:
    assert placement_rotation(mesh(310, 100, 10), NARROW, "H2D") == 90
    assert placement_rotation(mesh(100, 310, 10), NARROW, "H2D") == 0


@pytest.mark.parametrize("size", [(300, 20, 5), (20, 20, 251), (257, 257, 1), (400, 10, 10)])
def test_too_big_says_both_sizes(size: tuple[float, float, float]) -> None:
    with pytest.raises(SliceError, match="does not fit the X1C") as error:
        placement_rotation(mesh(*size), BED, "X1C")
    assert error.value.stage == "slice"
    assert "256 × 256 × 250 mm" in error.value.message


def test_empty_mesh() -> None:
    with pytest.raises(SliceError, match="empty"):
        placement_rotation(mesh(0, 0, 0, facets=0), BED, "X1C")
    with pytest.raises(SliceError, match="flat"):
        placement_rotation(mesh(10, 10, 0), BED, "X1C")
