from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from queue_fakes import InMemoryQueueRepository, InMemoryUnitOfWork

from contracts.queue.v1 import OrderForecastChanged
from printqueue.domain.forecast import ForecastSettings, JobSlot, OrderForecast, due_by, forecast, print_duration
from printqueue.domain.matching import Requirement, _Stock, match
from printqueue.domain.model import Assignment, Job, LoadedMaterial, Material, Printer
from printqueue.entrypoints.forecast_loop import ForecastLoop, moved
from printqueue.service_layer.handlers import Deps

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PLA = Material("PLA")
PETG_RED = Material("PETG", "#C12E1F")
ANY = Assignment()
SETTINGS = ForecastSettings(bed_clear_minutes=10, default_print_minutes=60)


def job(
    job_id: str,
    material: Material = PLA,
    assignment: Assignment = ANY,
    *,
    order_id: str = "o1",
    minutes: float | None = 60,
    fulfillment: date | None = None,
    priority: str = "normal",
    status: str = "queued",
    printer_id: str | None = None,
    progress: float = 0.0,
    started_at: datetime | None = None,
    copy: int = 1,
    order_age: int = 0,
) -> Job:
    return Job(
        id=job_id,
        order_id=order_id,
        order_number=order_id,
        line_item_id="li",
        line_position=0,
        sku_id="s",
        sku="S",
        part_id="p",
        part_index=0,
        part_name="part",
        copy_number=copy,
        material=material,
        parameters={},
        file={},
        assignment=assignment,
        order_created_at=NOW - timedelta(days=1, minutes=-order_age),
        created_at=NOW,
        updated_at=NOW,
        fulfillment_date=fulfillment,
        print_minutes=minutes,
        priority=priority,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        printer_id=printer_id,
        progress_percent=progress,
        started_at=started_at,
    )


def printer(
    printer_id: str,
    *materials: LoadedMaterial,
    fabmatic: bool = False,
    state: str = "idle",
    online: bool = True,
    bed_clear: bool = True,
    idle_minutes: int = 0,
    tags: tuple[str, ...] = (),
) -> Printer:
    return Printer(
        id=printer_id,
        name=printer_id.upper(),
        revision=1,
        model="P1S",
        fabmatic=fabmatic,
        tags=tags,
        online=online,
        state=state,
        bed_clear=bed_clear,
        materials=materials or (LoadedMaterial(0, "PLA", "FFFFFF"),),
        idle_since=NOW - timedelta(minutes=idle_minutes),
    )


def slots_of(result_slots: list[JobSlot], printer_id: str) -> list[JobSlot]:
    return sorted((s for s in result_slots if s.printer_id == printer_id), key=lambda s: s.starts_at)


def test_an_operator_printer_waits_for_its_bed_to_be_cleared_between_prints_a_fabmatic_one_does_not() -> None:
    jobs = [job("a"), job("b", copy=2)]
    manual = forecast(jobs, [printer("p")], NOW, SETTINGS)
    assert [(s.starts_at, s.ends_at) for s in slots_of(manual.slots, "p")] == [
        (NOW, NOW + timedelta(minutes=60)),
        (NOW + timedelta(minutes=70), NOW + timedelta(minutes=130)),
    ]
    assert manual.orders["o1"].completes_at == NOW + timedelta(minutes=130)
    fab = forecast(jobs, [printer("p", fabmatic=True)], NOW, SETTINGS)
    assert fab.orders["o1"].completes_at == NOW + timedelta(minutes=120)


def test_the_sliced_estimate_wins_over_the_parts_then_the_default_and_time_is_scaled() -> None:
    sliced = job("a", minutes=90)
    sliced.sliced_file = {"print_minutes": 30.0}
    assert print_duration(sliced, SETTINGS) == timedelta(minutes=30)
    assert print_duration(job("b", minutes=None), SETTINGS) == timedelta(minutes=60)
    assert print_duration(job("c", minutes=90), ForecastSettings(time_scale=60)) == timedelta(minutes=1.5)


def test_a_running_job_ends_after_the_rest_of_its_estimate() -> None:
    running = job("r", status="printing", printer_id="p", progress=25, started_at=NOW - timedelta(minutes=15))
    waiting = job("w", order_id="o2")
    result = forecast([running, waiting], [printer("p", state="printing")], NOW, SETTINGS)
    assert result.orders["o1"].completes_at == NOW + timedelta(minutes=45)
    assert slots_of(result.slots, "p")[1].starts_at == NOW + timedelta(minutes=55)
    assert result.orders["o2"].completes_at == NOW + timedelta(minutes=115)


def test_a_running_job_without_progress_ends_by_its_start_time() -> None:
    running = job("r", status="printing", printer_id="p", started_at=NOW - timedelta(minutes=20))
    result = forecast([running], [printer("p", state="printing")], NOW, SETTINGS)
    assert result.orders["o1"].completes_at == NOW + timedelta(minutes=40)


def test_a_bed_waiting_for_the_operator_is_cleared_after_the_assumed_delay() -> None:
    waiting_long = printer("p", state="finished", bed_clear=False, idle_minutes=30)
    just_finished = printer("q", state="finished", bed_clear=False, idle_minutes=4)
    assert forecast([job("a")], [waiting_long], NOW, SETTINGS).slots[0].starts_at == NOW
    assert forecast([job("a")], [just_finished], NOW, SETTINGS).slots[0].starts_at == NOW + timedelta(minutes=6)


def test_an_order_needing_a_material_no_printer_holds_is_blocked_and_late_until_it_is_loaded() -> None:
    due = NOW.date()
    jobs = [job("a", order_id="fine", fulfillment=due), job("b", PETG_RED, order_id="petg", fulfillment=due)]
    fleet = [printer("p")]
    before = forecast(jobs, fleet, NOW, SETTINGS)
    assert before.orders["petg"] == before.orders["petg"].__class__(
        "petg", None, True, "no printer holds PETG #C12E1F"
    )
    assert before.orders["fine"].late is False
    fleet.append(printer("q", LoadedMaterial(1, "PETG", "C12E1FFF")))
    after = forecast(jobs, fleet, NOW, SETTINGS)
    assert after.orders["petg"].blocked_by is None
    assert after.orders["petg"].completes_at == NOW + timedelta(minutes=60)
    assert after.orders["petg"].late is False


def test_a_material_held_only_by_offline_printers_names_that() -> None:
    result = forecast([job("a", PETG_RED)], [printer("q", LoadedMaterial(1, "PETG", "C12E1F"), online=False,
                                                      state="offline")], NOW, SETTINGS)
    assert result.orders["o1"].blocked_by == "every printer that holds PETG #C12E1F is offline"
    assert result.orders["o1"].late is False  # no fulfilment date: never late


def test_assignment_to_one_printer_is_kept_and_named_when_it_cannot_print() -> None:
    pinned = job("a", assignment=Assignment("printer", "q"))
    result = forecast([pinned], [printer("p"), printer("q", LoadedMaterial(0, "ABS"))], NOW, SETTINGS)
    assert result.orders["o1"].blocked_by == "no printer on printer Q holds PLA"
    result = forecast([pinned], [printer("p", idle_minutes=50), printer("q")], NOW, SETTINGS)
    assert [s.printer_id for s in result.slots] == ["q"]


def test_late_is_after_the_end_of_the_fulfilment_day() -> None:
    due = due_by(NOW.date())
    assert due == datetime(2026, 3, 3, tzinfo=UTC)
    many = [job(f"j{i}", copy=i, fulfillment=NOW.date(), minutes=300) for i in range(4)]
    result = forecast(many, [printer("p")], NOW, SETTINGS)  # 4 × 5 h + 3 clears: ends 04:30 next day
    assert result.orders["o1"].completes_at == NOW + timedelta(hours=20, minutes=30)
    assert result.orders["o1"].late is True
    assert forecast(many[:3], [printer("p")], NOW, SETTINGS).orders["o1"].late is False


# --- properties ---------------------------------------------------------------------------------

MATERIALS = [Material("PLA"), Material("PLA", "#FF0000"), Material("PETG"), Material("ABS", "#000000")]
SLOTS = [LoadedMaterial(0, "PLA", "FF0000"), LoadedMaterial(0, "PLA", "FFFFFF"), LoadedMaterial(1, "PETG", "00FF00"),
         LoadedMaterial(2, "ABS", "000000")]


@st.composite
def fleets(draw: st.DrawFn) -> list[Printer]:
    count = draw(st.integers(1, 6))
    out = []
    for index in range(count):
        loaded = draw(st.lists(st.sampled_from(SLOTS), min_size=1, max_size=3, unique=True))
        out.append(printer(
            f"p{index}", *loaded,
            fabmatic=draw(st.booleans()),
            online=index == 0 or draw(st.booleans()),
            bed_clear=draw(st.booleans()),
            idle_minutes=draw(st.integers(0, 120)),
            tags=tuple(draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True))),
        ))
    for p in out:
        if not p.online:
            p.state = "offline"
    return out


@st.composite
def queues(draw: st.DrawFn, fleet: list[Printer]) -> list[Job]:
    count = draw(st.integers(0, 25))
    dates = draw(st.lists(st.one_of(st.none(), st.dates(date(2026, 3, 1), date(2026, 3, 5))), min_size=5, max_size=5))
    out = []
    for index in range(count):
        mode = draw(st.sampled_from(["next_available", "next_available", "printer", "tags"]))
        assignment = Assignment(
            mode,  # type: ignore[arg-type]
            draw(st.sampled_from([p.id for p in fleet])) if mode == "printer" else None,
            ("a",) if mode == "tags" else (),
        )
        out.append(job(
            f"j{index}", draw(st.sampled_from(MATERIALS)), assignment,
            order_id=f"o{(order := draw(st.integers(0, 4)))}", copy=index,
            minutes=draw(st.one_of(st.none(), st.floats(1, 600))),
            priority=draw(st.sampled_from(["normal", "normal", "low"])),
            fulfillment=dates[order],
            order_age=draw(st.integers(0, 100)),
        ))
    return out


@st.composite
def farms(draw: st.DrawFn) -> tuple[list[Printer], list[Job]]:
    fleet = draw(fleets())
    return fleet, draw(queues(fleet))


@settings(max_examples=200, deadline=None)
@given(farms())
def test_every_job_is_placed_on_a_fitting_online_printer_without_overlap_or_its_order_is_blocked(
    farm: tuple[list[Printer], list[Job]],
) -> None:
    fleet, jobs = farm
    result = forecast(jobs, fleet, NOW, SETTINGS)
    by_id = {p.id: p for p in fleet}
    placed = {s.job_id for s in result.slots}
    for j in jobs:
        order = result.orders[j.order_id]
        if j.id not in placed:
            assert order.blocked_by is not None and order.completes_at is None
            assert order.late == (j.fulfillment_date is not None)
    for s in result.slots:
        p = by_id[s.printer_id]
        the_job = next(j for j in jobs if j.id == s.job_id)
        assert p.online and _Stock.of(p).fits(Requirement.of_job(the_job))
        assert s.starts_at >= NOW
        assert s.ends_at - s.starts_at == print_duration(the_job, SETTINGS)
    for p in fleet:
        timeline = slots_of(result.slots, p.id)
        gap = timedelta(0) if p.fabmatic else timedelta(minutes=SETTINGS.bed_clear_minutes)
        for first, second in itertools.pairwise(timeline):
            assert second.starts_at >= first.ends_at + gap
    for order_id, order in result.orders.items():
        if order.blocked_by is None:
            ends = [s.ends_at for s in result.slots if s.order_id == order_id]
            assert order.completes_at == max(ends)
            due = due_by(next(j.fulfillment_date for j in jobs if j.order_id == order_id))
            assert order.late == (due is not None and order.completes_at > due)


@settings(max_examples=200, deadline=None)
@given(farms())
def test_what_starts_now_is_exactly_what_the_matcher_dispatches_now(farm: tuple[list[Printer], list[Job]]) -> None:
    fleet, jobs = farm
    ready = [p for p in fleet if p.online and p.bed_clear]
    result = forecast(jobs, fleet, NOW, ForecastSettings(bed_clear_minutes=1000))
    starting_now = {(s.job_id, s.printer_id) for s in result.slots if s.starts_at == NOW}
    assert starting_now == {(d.job_id, d.printer_id) for d in match(jobs, ready)}


def test_an_orders_forecast_is_published_again_only_when_it_moved() -> None:
    ends = NOW + timedelta(hours=10)
    sent = OrderForecast("o", ends, False)
    assert moved(None, sent, NOW)
    assert not moved(sent, OrderForecast("o", ends + timedelta(minutes=11), False), NOW)  # within 2% of 10 h
    assert moved(sent, OrderForecast("o", ends + timedelta(minutes=13), False), NOW)
    assert moved(sent, OrderForecast("o", ends, True), NOW)
    assert moved(sent, OrderForecast("o", None, True, "no printer holds PLA"), NOW)
    soon = OrderForecast("o", NOW + timedelta(seconds=30), False)
    assert not moved(soon, OrderForecast("o", NOW + timedelta(seconds=34), False), NOW)  # the 5 s floor
    assert moved(soon, OrderForecast("o", NOW + timedelta(seconds=36), False), NOW)


async def test_the_loop_publishes_each_orders_forecast_once_and_again_only_when_it_moved() -> None:

    uow = InMemoryUnitOfWork(InMemoryQueueRepository())
    loop = ForecastLoop(lambda: uow, SETTINGS, Deps(clock=lambda: NOW), 1.0, 15.0)  # type: ignore[arg-type]
    jobs = [job("a", order_id="a"), job("b", PETG_RED, order_id="b", fulfillment=NOW.date())]
    fleet = [printer("p")]
    await loop._publish(forecast(jobs, fleet, NOW, SETTINGS))
    first = [m for m in uow.messages if isinstance(m, OrderForecastChanged)]
    assert {(m.order_id, m.blocked_by, m.late) for m in first} == {
        ("a", None, False), ("b", "no printer holds PETG #C12E1F", True)
    }
    later = NOW + timedelta(minutes=1)
    await loop._publish(forecast(jobs, fleet, later, SETTINGS))  # a ends a minute later: within 2% of an hour
    assert len(uow.messages) == 2
    fleet.append(printer("q", LoadedMaterial(1, "PETG", "C12E1F")))
    await loop._publish(forecast(jobs, fleet, later, SETTINGS))
    again = [m for m in uow.messages[2:] if isinstance(m, OrderForecastChanged)]
    assert [(m.order_id, m.completes_at, m.late) for m in again] == [
        ("b", later + timedelta(minutes=60), False)
    ]


def test_a_job_waiting_for_its_slices_prints_on_a_printer_of_a_model_they_are_made_for() -> None:
    waiting = job("s", status="slicing")
    waiting.slice_basis = "basis"
    other = printer("x", idle_minutes=60)
    other.model = "X1C"
    fleet = [other, printer("p")]
    placed = forecast([waiting], fleet, NOW, SETTINGS, {"basis": frozenset({("P1S", False, "bambu")})})
    assert [(s.job_id, s.printer_id) for s in placed.slots] == [("s", "p")]
    unsliced = forecast([waiting], fleet, NOW, SETTINGS, {})
    assert unsliced.orders["o1"].blocked_by == "no file is sliced for a printer that holds PLA"


def test_the_farms_colour_tolerance_lets_a_close_spool_print_as_matching_would() -> None:
    red = job("r", Material("PLA", "#FF0000"))
    fleet = [printer("p", LoadedMaterial(0, "PLA", "F01010"))]
    exact = forecast([red], fleet, NOW, SETTINGS)
    assert exact.orders["o1"].blocked_by == "no printer holds PLA #FF0000"
    close = forecast([red], fleet, NOW, SETTINGS, color_tolerance=10)
    assert [(s.job_id, s.printer_id, s.starts_at) for s in close.slots] == [("r", "p", NOW)]
    assert match([red], fleet, color_tolerance=10) != []
    too_far = forecast([red], fleet, NOW, SETTINGS, color_tolerance=0.5)
    assert too_far.orders["o1"].blocked_by == "no printer holds PLA #FF0000 (within ΔE 0.5)"
