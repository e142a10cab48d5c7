"""Matching by colour closeness: a job's colour matches a spool within the farm's CIEDE2000 tolerance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from printqueue.domain.colour_distance import color_distance
from printqueue.domain.matching import (
    Fleet,
    Requirement,
    dispatch_limits,
    explain,
    fits,
    fitting_slots,
    job_order,
    match,
)
from printqueue.domain.model import Assignment, Job, LoadedMaterial, Material, Printer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RED, CLOSE_RED, BLUE = "#FF0000", "#F01010", "#0000FF"


def job(job_id: str, color: str | None, *, kind: str = "PLA", age: int = 0, profile: str | None = None) -> Job:
    return Job(
        id=job_id, order_id="o1", order_number="1001", line_item_id="li", line_position=0, sku_id="s", sku="S",
        part_id="p", part_index=0, part_name="part", copy_number=age + 1, material=Material(kind, color, profile),
        parameters={}, file={}, assignment=Assignment(), order_created_at=T0 + timedelta(minutes=age),
        created_at=T0, updated_at=T0,
    )  # fmt: skip


def printer(printer_id: str, *colors: str, kind: str = "PLA", idle: int = 0, profile: str | None = None) -> Printer:
    return Printer(
        id=printer_id, name=printer_id.upper(), revision=1, online=True, state="idle", bed_clear=True,
        materials=tuple(LoadedMaterial(i, kind, f"{c.lstrip('#')}FF", profile) for i, c in enumerate(colors)),
        idle_since=T0 - timedelta(minutes=idle),
    )  # fmt: skip


def test_a_slightly_different_red_matches_within_the_tolerance_only() -> None:
    near = color_distance(RED, CLOSE_RED)
    assert near is not None and 1 < near < 5
    spool = printer("p", CLOSE_RED)
    assert not fits(spool, Requirement.of(Material("PLA", RED), Assignment()))
    assert fits(spool, Requirement.of(Material("PLA", RED), Assignment(), color_tolerance=5))
    assert not fits(spool, Requirement.of(Material("PLA", BLUE), Assignment(), color_tolerance=5))
    assert not fits(spool, Requirement.of(Material("PETG", RED), Assignment(), color_tolerance=5))
    assert fitting_slots(printer("two", BLUE, CLOSE_RED), Requirement.of(Material("PLA", RED), Assignment(),
                                                                        color_tolerance=5)) == [1]


def test_the_pass_dispatches_to_a_close_colour_only_with_a_tolerance() -> None:
    jobs, printers = [job("red", RED)], [printer("p", CLOSE_RED)]
    assert match(jobs, printers) == []
    assert [(d.job_id, d.printer_id) for d in match(jobs, printers, color_tolerance=5)] == [("red", "p")]
    assert match(jobs, printers, color_tolerance=1) == []


def test_a_close_colour_matches_whatever_profile_the_spool_reports() -> None:
    """A job without a profile takes a spool with one (as the exact colour does): Bambu spools report theirs."""
    spool = printer("p", CLOSE_RED, profile="GFA00")
    assert fits(spool, Requirement.of(Material("PLA", RED), Assignment(), color_tolerance=5))
    assert [(d.job_id, d.printer_id) for d in match([job("red", RED)], [spool], color_tolerance=5)] == [("red", "p")]
    close = Requirement.of(Material("PLA", RED), Assignment(), color_tolerance=5)
    assert dispatch_limits([(close, 3)], Fleet([spool])) == [1]
    other = Requirement.of(Material("PLA", RED, "GFL99"), Assignment(), color_tolerance=5)
    assert not fits(spool, other) and dispatch_limits([(other, 3)], Fleet([spool])) == [0]


def test_the_explanation_shows_the_distance_to_the_closest_spool() -> None:
    printers = [(printer("near", BLUE, CLOSE_RED), False), (printer("far", BLUE), False),
                (printer("petg", RED, kind="PETG"), False)]
    exact = {v.printer_id: v for v in explain(job("j", RED), printers, T0)}
    near = color_distance(RED, CLOSE_RED)
    assert exact["near"].result == "material_mismatch" and exact["near"].color_distance == near
    assert exact["near"].detail == f"the closest PLA spool is ΔE {near:g} from {RED} (tolerance 0)"
    assert exact["far"].color_distance == color_distance(RED, BLUE)
    assert exact["petg"].color_distance is None
    tolerant = {v.printer_id: v for v in explain(job("j", RED), printers, T0, color_tolerance=5)}
    assert tolerant["near"].result == "matched" and tolerant["near"].color_distance == near
    assert tolerant["far"].result == "material_mismatch"
    assert [v.color_distance for v in explain(job("any", None), printers, T0)] == [None, None, None]


PROFILES = st.sampled_from([None, "GFA00", "GFL99"])
PALETTE = ["#FF0000", "#F01010", "#E02020", "#FF3300", "#0000FF", "#1010F0", "#00FF00"]
jobs_strategy = st.lists(
    st.builds(lambda i, c, k, a, pr: job(f"j{i}", c, kind=k, age=a, profile=pr), st.integers(0, 30),
              st.sampled_from([None, *PALETTE]), st.sampled_from(["PLA", "PETG"]), st.integers(0, 5), PROFILES),
    max_size=20, unique_by=lambda j: j.id,
)  # fmt: skip
printers_strategy = st.lists(
    st.builds(lambda i, cs, k, idle, pr: printer(f"p{i}", *cs, kind=k, idle=idle, profile=pr), st.integers(0, 6),
              st.lists(st.sampled_from(PALETTE), min_size=1, max_size=3), st.sampled_from(["PLA", "PETG"]),
              st.integers(0, 100), PROFILES),
    max_size=6, unique_by=lambda p: p.id,
)  # fmt: skip
tolerances = st.sampled_from([0.0, 1.0, 5.0, 12.0, 40.0])


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, printers_strategy, tolerances)
def test_with_a_tolerance_match_still_is_the_greedy_queue_order_assignment(
    jobs: list[Job], printers: list[Printer], tolerance: float
) -> None:
    expected: list[tuple[str, str]] = []
    free = sorted(printers, key=lambda p: (p.idle_since, p.id))
    for candidate in sorted(jobs, key=job_order):
        requirement = Requirement.of_job(candidate, color_tolerance=tolerance)
        chosen = next((p for p in free if fits(p, requirement)), None)
        if chosen is not None:
            free.remove(chosen)
            expected.append((candidate.id, chosen.id))
    assert [(d.job_id, d.printer_id) for d in match(jobs, printers, color_tolerance=tolerance)] == expected


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, printers_strategy, tolerances)
def test_with_a_tolerance_matching_only_the_dispatchable_heads_is_the_same(
    jobs: list[Job], printers: list[Printer], tolerance: float
) -> None:
    """What the SQL repository does with the farm's tolerance: load each group's first `dispatch_limits` jobs."""
    groups: dict[tuple[str, str | None, str | None], list[Job]] = {}
    for candidate in jobs:
        material = candidate.material
        groups.setdefault((material.type, material.color, material.profile), []).append(candidate)
    members = list(groups.values())
    requirements = [(Requirement.of_job(g[0], color_tolerance=tolerance), len(g)) for g in members]
    heads = [
        j
        for group, limit in zip(members, dispatch_limits(requirements, Fleet(printers)), strict=True)
        for j in sorted(group, key=job_order)[:limit]
    ]
    assert match(heads, printers, color_tolerance=tolerance) == match(jobs, printers, color_tolerance=tolerance)


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, printers_strategy, tolerances)
def test_explain_says_matched_exactly_where_match_would_dispatch(
    jobs: list[Job], printers: list[Printer], tolerance: float
) -> None:
    for candidate in jobs:
        explained = {v.printer_id for v in explain(candidate, [(p, False) for p in printers], T0,
                                                   color_tolerance=tolerance) if v.result == "matched"}
        assert explained == {p.id for p in printers if match([candidate], [p], color_tolerance=tolerance)}


@given(jobs_strategy, printers_strategy)
def test_a_wider_tolerance_never_serves_fewer_printers(jobs: list[Job], printers: list[Printer]) -> None:
    for candidate in jobs:
        served = [
            {p.id for p in printers if fits(p, Requirement.of_job(candidate, color_tolerance=t))} for t in (0, 5, 40)
        ]
        assert served[0] <= served[1] <= served[2]
