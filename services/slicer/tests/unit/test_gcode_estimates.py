"""Estimates read from PrusaSlicer's own output comments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slicer_samples import prusa_gcode

from slicer.domain.gcode_estimates import EstimateMissing, count_layers, parse_duration, read_estimates


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20m 12s", 1212.0), ("1h 2m 3s", 3723.0), ("1d 0h 0m 5s", 86405.0), ("45s", 45.0), ("nothing", None)],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_prusa_output() -> None:
    estimate = read_estimates(prusa_gcode(layers=7))
    assert estimate.print_seconds == 3723.0
    assert estimate.print_minutes == 62.05
    assert estimate.grams == 3.68
    assert estimate.filament_mm == 1234.56
    assert estimate.layers == 7
    assert estimate.max_z == pytest.approx(1.4)


def test_grams_from_density_when_the_slicer_gave_none() -> None:
    tail = b"; filament used [mm] = 1000\n; estimated printing time (normal mode) = 5m 0s\n"
    estimate = read_estimates(prusa_gcode(layers=1, tail=tail), density_g_cm3=1.24, diameter_mm=1.75)
    assert estimate.grams == pytest.approx(2.98, abs=0.01)  # 1 m of 1.75 mm PLA


def test_several_extruders_add_up() -> None:
    tail = (
        b"; filament used [mm] = 100.5, 200.25\n; total filament used [g] = 1.5\n"
        b"; estimated printing time (normal mode) = 1m 0s\n"
    )
    estimate = read_estimates(prusa_gcode(layers=1, tail=tail))
    assert estimate.filament_mm == 300.75 and estimate.grams == 1.5


def test_missing_estimate_is_an_error() -> None:
    with pytest.raises(EstimateMissing):
        read_estimates(b"G28\nG1 X1\n")


@given(st.integers(0, 300), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_any_duration_round_trips(d: int, h: int, m: int, s: int) -> None:
    text = (f"{d}d " if d else "") + f"{h}h {m}m {s}s"
    tail = f"; estimated printing time (normal mode) = {text}\n".encode()
    assert read_estimates(prusa_gcode(layers=2, tail=tail)).print_seconds == d * 86400 + h * 3600 + m * 60 + s


@given(st.integers(0, 500))
def test_layers_are_counted(layers: int) -> None:
    assert count_layers(prusa_gcode(layers=layers)) == layers
