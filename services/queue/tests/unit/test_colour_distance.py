"""CIEDE2000 against the published test data of Sharma, Wu and Dalal (2005, table 1), and its properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printqueue.domain.colour_distance import color_distance, colors_match, delta_e_2000, lab_of

SHARMA_WU_DALAL = [
    # L1, a1, b1, L2, a2, b2, ΔE00 (pairs 1-34 of the paper's table 1)
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


@pytest.mark.parametrize(("l1", "a1", "b1", "l2", "a2", "b2", "expected"), SHARMA_WU_DALAL)
def test_the_published_pairs(l1: float, a1: float, b1: float, l2: float, a2: float, b2: float, expected: float) -> None:
    assert delta_e_2000((l1, a1, b1), (l2, a2, b2)) == pytest.approx(expected, abs=5e-5)
    assert delta_e_2000((l2, a2, b2), (l1, a1, b1)) == pytest.approx(expected, abs=5e-5)


labs = st.tuples(
    st.floats(0, 100, allow_nan=False), st.floats(-128, 127, allow_nan=False), st.floats(-128, 127, allow_nan=False)
)
hex_colors = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06X}")


@given(labs, labs)
def test_symmetric_and_never_negative(one: tuple[float, float, float], other: tuple[float, float, float]) -> None:
    forth = delta_e_2000(one, other)
    assert forth >= 0
    assert forth == pytest.approx(delta_e_2000(other, one), abs=1e-9)


@given(labs)
def test_zero_between_equal_colours(lab: tuple[float, float, float]) -> None:
    assert delta_e_2000(lab, lab) == 0


@given(hex_colors, hex_colors)
def test_hex_distance_is_zero_only_for_near_identical_colours(one: str, other: str) -> None:
    distance = color_distance(one, other)
    assert distance is not None and distance >= 0
    assert distance == color_distance(other, one)
    assert color_distance(one, one.lower()) == 0
    if distance > 0:
        assert one != other


def test_srgb_to_lab_reference_points() -> None:
    white, black, red = lab_of("#FFFFFF"), lab_of("#000000"), lab_of("#FF0000")
    assert white == pytest.approx((100.0, 0.0, 0.0), abs=0.01)
    assert black == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    assert red == pytest.approx((53.24, 80.09, 67.20), abs=0.01)
    assert lab_of("red") is None


def test_a_slightly_different_red_is_close_and_blue_is_not() -> None:
    near = color_distance("#FF0000", "#F01010")
    assert near is not None and 1 < near < 5
    far = color_distance("#FF0000", "#0000FF")
    assert far is not None and far > 50


@given(hex_colors, hex_colors, st.floats(0, 100))
def test_colours_match_within_the_tolerance_exactly_when_their_distance_is(one: str, other: str, tol: float) -> None:
    distance = color_distance(one, other)
    assert distance is not None
    assert colors_match(one, other, tol) == (one == other or (tol > 0 and distance <= tol))


def test_matching_without_tolerance_or_hex_colours() -> None:
    assert colors_match(None, "#123456", 0)
    assert not colors_match("#123456", None, 50)
    assert colors_match("ff0000", "#FF0000FF", 0)
    assert not colors_match("#FF0000", "#F01010", 0)
    assert colors_match("#FF0000", "#F01010", 5)
    assert colors_match("galaxy black", "GALAXY BLACK", 0)
    assert not colors_match("galaxy black", "#000000", 100)
