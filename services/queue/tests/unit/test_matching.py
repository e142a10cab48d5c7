from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from printqueue.domain.matching import (
    Dispatch,
    Fleet,
    Requirement,
    completed_slices,
    decide,
    dispatch_limits,
    explain,
    fits,
    idle_order,
    job_family,
    job_order,
    match,
    printer_family,
)
from printqueue.domain.model import Assignment, Job, LoadedMaterial, Material, Printer
from printqueue.domain.slicing import Slice, SliceState, printer_target

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLA = Material("PLA")
ANY = Assignment()


def job(
    job_id: str,
    material: Material = PLA,
    assignment: Assignment = ANY,
    *,
    priority: str = "normal",
    fulfillment: date | None = None,
    order_age: int = 0,
    order_id: str = "o1",
    line: int = 0,
    copy: int = 1,
    kind: str | None = None,
) -> Job:
    return Job(
        id=job_id,
        order_id=order_id,
        order_number="1001",
        line_item_id=f"li{line}",
        line_position=line,
        sku_id="s",
        sku="S",
        part_id="p",
        part_index=0,
        part_name="part",
        copy_number=copy,
        material=material,
        parameters={},
        file={"kind": kind, "sha256": "0" * 64} if kind else {},
        assignment=assignment,
        order_created_at=T0 + timedelta(minutes=order_age),
        created_at=T0,
        updated_at=T0,
        fulfillment_date=fulfillment,
        priority=priority,  # type: ignore[arg-type]
    )


def printer(
    printer_id: str,
    *materials: LoadedMaterial,
    idle_minutes: int = 0,
    tags: tuple[str, ...] = (),
    online: bool = True,
    state: str = "idle",
    bed_clear: bool = True,
    protocol: str = "bambu_lan",
) -> Printer:
    return Printer(
        id=printer_id,
        name=printer_id.upper(),
        revision=1,
        protocol=protocol,
        tags=tags,
        online=online,
        state=state,
        bed_clear=bed_clear,
        materials=materials or (LoadedMaterial(0, "PLA", "FFFFFFFF"),),
        idle_since=T0 - timedelta(minutes=idle_minutes),
    )


def test_normal_priority_goes_before_low_then_fulfillment_date_then_order_age_then_line() -> None:
    jobs = [
        job("low", priority="low", fulfillment=date(2026, 1, 1)),
        job("late", fulfillment=date(2026, 3, 1)),
        job("undated"),
        job("soon-new-order", fulfillment=date(2026, 2, 1), order_age=10, order_id="o2"),
        job("soon-old-order-line2", fulfillment=date(2026, 2, 1), line=2),
        job("soon-old-order-line1", fulfillment=date(2026, 2, 1), line=1),
    ]
    ordered = [j.id for j in sorted(jobs, key=job_order)]
    assert ordered == ["soon-old-order-line1", "soon-old-order-line2", "soon-new-order", "late", "undated", "low"]


def test_the_printer_idle_longest_takes_the_first_job() -> None:
    printers = [printer("recent", idle_minutes=1), printer("longest", idle_minutes=90), printer("mid", idle_minutes=30)]
    dispatches = match([job("a", order_age=0), job("b", order_age=1)], printers)
    assert [(d.job_id, d.printer_id) for d in dispatches] == [("a", "longest"), ("b", "mid")]


def test_low_priority_runs_only_on_printers_no_normal_job_can_use() -> None:
    printers = [printer("pla", idle_minutes=10), printer("petg", LoadedMaterial(1, "PETG"), idle_minutes=5)]
    jobs = [
        job("low-pla", priority="low"),
        job("normal-pla", order_age=5),
        job("low-petg", Material("PETG"), priority="low"),
    ]
    assert {(d.job_id, d.printer_id) for d in match(jobs, printers)} == {("normal-pla", "pla"), ("low-petg", "petg")}


def test_material_type_is_case_insensitive_and_colour_compares_rgb_ignoring_alpha() -> None:
    red = printer("red", LoadedMaterial(2, "pla", "FF0000FF"))
    assert fits(red, Requirement.of(Material("PLA", "#ff0000"), Assignment()))
    assert fits(red, Requirement.of(Material("PLA"), Assignment()))
    assert not fits(red, Requirement.of(Material("PLA", "#00FF00"), Assignment()))
    assert not fits(red, Requirement.of(Material("PETG", "#FF0000"), Assignment()))


def test_external_spool_counts_and_profiles_only_compare_when_both_sides_name_one() -> None:
    external = printer("ext", LoadedMaterial(254, "PETG", "000000FF", "GFG99"))
    assert fits(external, Requirement.of(Material("PETG", "#000000"), Assignment()))
    assert fits(external, Requirement.of(Material("PETG", None, "GFG99"), Assignment()))
    assert not fits(external, Requirement.of(Material("PETG", None, "GFG01"), Assignment()))
    no_profile = printer("np", LoadedMaterial(0, "PETG", "000000FF", None))
    assert fits(no_profile, Requirement.of(Material("PETG", None, "GFG01"), Assignment()))


def test_assignment_to_a_printer_or_to_tags() -> None:
    printers = [printer("a", idle_minutes=50, tags=("big",)), printer("b", idle_minutes=10, tags=("big", "Enclosed"))]
    to_b = job("to-b", assignment=Assignment("printer", "b"))
    tagged = job("tagged", assignment=Assignment("tags", tags=("enclosed", "BIG")), order_age=1)
    dispatches = match([to_b, tagged], printers)
    assert [(d.job_id, d.printer_id) for d in dispatches] == [("to-b", "b")]
    assert [(d.job_id, d.printer_id) for d in match([tagged], printers)] == [("tagged", "b")]
    assert match([job("to-z", assignment=Assignment("printer", "z"))], printers) == []


def test_explain_names_the_most_lasting_reason_per_printer() -> None:
    printers = [
        (printer("ok"), False),
        (printer("off", online=False, state="offline"), False),
        (printer("busy", state="printing"), False),
        (printer("occupied"), True),
        (printer("dirty", state="finished", bed_clear=False), False),
        (printer("petg", LoadedMaterial(0, "PETG")), False),
        (printer("wrong-and-off", LoadedMaterial(0, "PETG"), online=False, state="offline"), False),
    ]
    results = {v.printer_id: v.result for v in explain(job("j"), printers, T0)}
    assert results == {
        "ok": "matched",
        "off": "offline",
        "busy": "busy",
        "occupied": "busy",
        "dirty": "bed_not_clear",
        "petg": "material_mismatch",
        "wrong-and-off": "material_mismatch",
    }
    tagged = job("t", assignment=Assignment("tags", tags=("x",)))
    assert {v.result for v in explain(tagged, printers, T0)} == {"tag_mismatch"}
    targeted = job("t", assignment=Assignment("printer", "ok"))
    verdicts = {v.printer_id: v.result for v in explain(targeted, printers, T0)}
    assert verdicts["ok"] == "matched" and verdicts["busy"] == "not_target_printer"


def test_a_pre_sliced_file_goes_only_to_printers_of_its_kind() -> None:
    # The Klipper printer is idle longest: by idle time alone the Bambu project file would go there.
    klipper = printer("klipper", idle_minutes=90, protocol="moonraker")
    bambu = printer("bambu", idle_minutes=60)
    prusa = printer("prusa", idle_minutes=30, protocol="prusalink")
    jobs = [
        job("project", kind="gcode.3mf"),
        job("plain", kind="gcode", order_age=1),
        job("mesh", kind="stl", order_age=2),
    ]
    got = {(d.job_id, d.printer_id) for d in match(jobs, [bambu, klipper, prusa])}
    assert got == {("project", "bambu"), ("plain", "klipper"), ("mesh", "prusa")}
    # Only the wrong kind of printer free: the job waits rather than fail at the gateway.
    assert match([job("project", kind="gcode.3mf")], [klipper, prusa]) == []
    assert match([job("plain", kind="gcode")], [bambu]) == []


def test_a_job_that_prints_a_slice_is_bound_by_its_slices_not_by_its_source_kind() -> None:
    sliced = job("s", kind="gcode")
    sliced.slice_basis = "basis"
    assert job_family(sliced) is None
    klipper = printer("k", protocol="moonraker")
    klipper.model = "Voron"
    assert match([sliced], [klipper], {"basis": frozenset({("Voron", False, "gcode")})}) == [Dispatch("s", "k")]


def sliced_job(job_id: str, material: Material = PLA, *, basis: str = "basis", order_age: int = 0) -> Job:
    made = job(job_id, material, kind="stl", order_age=order_age)
    made.slice_basis = basis
    return made


def mixed_fleet() -> dict[str, Printer]:
    """A Bambu X1C, a Klipper Voron 2.4 and a PrusaLink MK4, idle longest in that order, all with PLA."""
    fleet = {
        "x1c": printer("x1c", idle_minutes=10),
        "voron": printer("voron", idle_minutes=90, protocol="moonraker"),
        "mk4": printer("mk4", idle_minutes=60, protocol="prusalink"),
    }
    for printer_id, model in (("x1c", "X1C"), ("voron", "Voron 2.4"), ("mk4", "Prusa MK4")):
        fleet[printer_id].model = model
    return fleet


def made_slice(model: str, kind: str | None, state: SliceState = "completed", basis: str = "basis") -> Slice:
    return Slice(
        key=f"{basis}-{model}",
        basis=basis,
        printer_model=model,
        fabmatic=False,
        source={"kind": "stl", "sha256": "0" * 64},
        parameters={},
        material=PLA,
        requested_at=T0,
        state=state,
        file={"kind": kind, "sha256": "1" * 64, "bucket": "sliced-files"} if kind else None,
    )


def test_a_sliced_part_goes_to_each_model_it_has_a_file_for_and_no_other() -> None:
    fleet = mixed_fleet()
    slices = [
        made_slice("X1C", "gcode.3mf"), made_slice("Voron 2.4", "gcode"), made_slice("Prusa MK4", None, "requested")
    ]
    sliced = completed_slices(slices)
    assert sliced == {"basis": frozenset({("X1C", False, "bambu"), ("Voron 2.4", False, "gcode")})}
    jobs = [sliced_job("a"), sliced_job("b", order_age=1), sliced_job("c", order_age=2)]
    # The MK4 has no file yet: two jobs print, on the Voron (idle longest) and the X1C; the third waits.
    got = {(d.job_id, d.printer_id) for d in match(jobs, list(fleet.values()), sliced)}
    assert got == {("a", "voron"), ("b", "x1c")}
    assert match(jobs, [fleet["mk4"]], sliced) == []
    sliced_too = completed_slices([*slices[:2], made_slice("Prusa MK4", "gcode")])
    assert match(jobs, [fleet["mk4"]], sliced_too) == [Dispatch("a", "mk4")]
    # Another part's slices (another basis) print nothing of this one.
    assert match([sliced_job("d", basis="other")], list(fleet.values()), sliced_too) == []


def test_a_bambu_project_sliced_for_a_model_never_goes_to_a_gcode_printer_of_that_name() -> None:
    """An operator registered a Klipper printer with a Bambu model's name: the X1C slice is a `.gcode.3mf`,
    which it cannot print; likewise plain G-code made for a model never goes to a Bambu printer."""
    fleet = mixed_fleet()
    fleet["voron"].model = "X1C"
    sliced = completed_slices([made_slice("X1C", "gcode.3mf")])
    assert match([sliced_job("a")], [fleet["voron"]], sliced) == []
    assert match([sliced_job("a")], [fleet["voron"], fleet["x1c"]], sliced) == [Dispatch("a", "x1c")]
    fleet["x1c"].model = "Prusa MK4"
    plain = completed_slices([made_slice("Prusa MK4", "gcode")])
    assert match([sliced_job("a")], [fleet["x1c"]], plain) == []
    assert match([sliced_job("a")], [fleet["x1c"], fleet["mk4"]], plain) == [Dispatch("a", "mk4")]
    # A completed slice whose file is of no printable kind prints nowhere.
    assert completed_slices([made_slice("X1C", "stl")]) == {}
    assert completed_slices([made_slice("X1C", "gcode.3mf", "failed")]) == {}


def test_explain_says_why_a_sliced_part_does_not_go_to_a_printer() -> None:
    fleet = mixed_fleet()
    rogue = printer("rogue", protocol="octoprint")
    rogue.model = "X1C"
    slices = {
        ("X1C", False): made_slice("X1C", "gcode.3mf"),
        ("Voron 2.4", False): made_slice("Voron 2.4", None, "requested"),
    }
    failed = made_slice("Prusa MK4", None, "failed")
    failed.error = "no printer profile for model 'Prusa MK4'"
    verdicts = {v.printer_id: v for v in explain(
        sliced_job("a"), [(p, False) for p in (*fleet.values(), rogue)], T0, slices
    )}
    assert (verdicts["x1c"].result, verdicts["x1c"].detail) == ("matched", None)
    assert (verdicts["voron"].result, verdicts["voron"].detail) == (
        "slicing", "the file for Voron 2.4 is being sliced"
    )
    assert (verdicts["mk4"].result, verdicts["mk4"].detail) == ("file_mismatch", "no file sliced for Prusa MK4")
    assert (verdicts["rogue"].result, verdicts["rogue"].detail) == (
        "file_mismatch",
        "the file sliced for X1C: a Bambu project file (.gcode.3mf) cannot print on an OctoPrint printer",
    )
    slices[("Prusa MK4", False)] = failed
    mk4 = explain(sliced_job("a"), [(fleet["mk4"], False)], T0, slices)[0]
    assert (mk4.result, mk4.detail) == (
        "file_mismatch", "slicing for Prusa MK4 failed: no printer profile for model 'Prusa MK4'"
    )


def test_a_printer_of_an_older_gateway_without_a_protocol_is_a_bambu_one() -> None:
    assert printer_family(Printer(id="p", name="P", revision=1)) == "bambu"
    assert printer_family(printer("o", protocol="octoprint")) == "gcode"


def test_explain_says_which_kind_of_printer_a_pre_sliced_file_is_for() -> None:
    printers = [
        (printer("bambu"), False),
        (printer("klipper", protocol="moonraker"), False),
        (printer("klipper-petg", LoadedMaterial(0, "PETG"), protocol="moonraker"), False),
    ]
    project = {v.printer_id: v for v in explain(job("j", kind="gcode.3mf"), printers, T0)}
    assert project["bambu"].result == "matched"
    assert project["klipper"].result == "file_mismatch"
    assert project["klipper"].detail == "a Bambu project file (.gcode.3mf) cannot print on a Klipper printer"
    # Loading PETG would not help: the kind of printer is the lasting reason.
    assert project["klipper-petg"].result == "file_mismatch"
    plain = {v.printer_id: v for v in explain(job("j", kind="gcode"), printers, T0)}
    assert plain["bambu"].result == "file_mismatch"
    assert plain["bambu"].detail == "a plain G-code file cannot print on a Bambu printer"
    assert plain["klipper"].result == "matched"
    assert plain["klipper-petg"].result == "material_mismatch"


def test_a_flagged_printer_is_left_alone_until_its_cooldown_ends() -> None:
    flagged = printer("flagged")
    flagged.avoid_until = T0 + timedelta(minutes=1)
    assert explain(job("j"), [(flagged, False)], T0)[0].result == "busy"
    assert explain(job("j"), [(flagged, False)], T0 + timedelta(minutes=2))[0].result == "matched"


TYPES = ["PLA", "PETG", "ABS"]
COLORS = [None, "#FF0000", "#00FF00"]
TAGS = ["a", "b"]
KINDS = [None, "gcode", "gcode.3mf", "stl"]
PROTOCOLS = ["bambu_lan", "moonraker", "prusalink", "octoprint"]

materials = st.builds(
    LoadedMaterial,
    slot=st.sampled_from([0, 1, 254]),
    type=st.sampled_from([*TYPES, "pla"]),
    color=st.sampled_from(["FF0000FF", "00FF0080", "0000FFFF"]),
)
printers_strategy = st.lists(
    st.builds(
        lambda i, mats, idle, tags, protocol: printer(
            f"p{i}", *mats, idle_minutes=idle, tags=tuple(tags), protocol=protocol
        ),
        st.integers(0, 5),
        st.lists(materials, min_size=1, max_size=3),
        st.integers(0, 100),
        st.sets(st.sampled_from(TAGS)),
        st.sampled_from(PROTOCOLS),
    ),
    max_size=6,
    unique_by=lambda p: p.id,
)
assignments = st.one_of(
    st.just(Assignment()),
    st.builds(lambda i: Assignment("printer", f"p{i}"), st.integers(0, 6)),
    st.builds(lambda t: Assignment("tags", tags=tuple(t)), st.sets(st.sampled_from(TAGS))),
)
jobs_strategy = st.lists(
    st.builds(
        lambda i, t, c, a, prio, age, line, kind: job(
            f"j{i}", Material(t, c), a, priority=prio, order_age=age, line=line, kind=kind
        ),
        st.integers(0, 40),
        st.sampled_from(TYPES),
        st.sampled_from(COLORS),
        assignments,
        st.sampled_from(["normal", "low"]),
        st.integers(0, 5),
        st.integers(0, 3),
        st.sampled_from(KINDS),
    ),
    max_size=25,
    unique_by=lambda j: j.id,
)


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, printers_strategy)
def test_match_is_the_greedy_queue_order_assignment(jobs: list[Job], printers: list[Printer]) -> None:
    """Checked against the naive definition: each job in queue order takes the fitting free printer idle longest."""
    expected: list[tuple[str, str]] = []
    free = sorted(printers, key=lambda p: (p.idle_since, p.id))
    for candidate in sorted(jobs, key=job_order):
        requirement = Requirement.of_job(candidate)
        chosen = next((p for p in free if fits(p, requirement)), None)
        if chosen is not None:
            free.remove(chosen)
            expected.append((candidate.id, chosen.id))
    got = [(d.job_id, d.printer_id) for d in match(jobs, printers)]
    assert got == expected
    assert len({p for _, p in got}) == len(got)
    assert len({j for j, _ in got}) == len(got)


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, printers_strategy)
def test_matching_only_each_groups_dispatchable_head_is_the_same(jobs: list[Job], printers: list[Printer]) -> None:
    """What the SQL repository does: group queued jobs by requirement, keep each group's first
    `dispatch_limits` jobs in queue order, and match only those. Like its SQL, the groups split by the
    kind of an unsliced job's file (finer than its family: the limits must hold for any finer grouping)."""
    groups: dict[tuple[object, ...], list[Job]] = {}
    for candidate in jobs:
        key = (candidate.material.type.strip().casefold(), candidate.material.color, candidate.material.profile,
               candidate.assignment, candidate.file.get("kind") if candidate.slice_basis is None else None)
        groups.setdefault(key, []).append(candidate)
    members = list(groups.values())
    requirements = [(Requirement.of_job(g[0]), len(g)) for g in members]
    heads = [
        j
        for group, limit in zip(members, dispatch_limits(requirements, Fleet(printers)), strict=True)
        for j in sorted(group, key=job_order)[:limit]
    ]
    assert match(heads, printers) == match(jobs, printers)
    # and as the pass hands them over: keys only, each group's head in queue order, one fleet for both
    fleet = Fleet(printers)
    merged = sorted(
        (job_order(j), index)
        for index, (group, limit) in enumerate(zip(members, dispatch_limits(requirements, fleet), strict=True))
        for j in sorted((j for j in group if j.status == "queued"), key=job_order)[:limit]
    )
    candidates = ([requirement for requirement, _ in requirements], [(index, key[-1]) for key, index in merged])
    assert decide(candidates, fleet) == match(jobs, printers)
    assert decide(candidates, fleet) == match(jobs, printers), "a fleet is only read: it decides again the same"


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, printers_strategy)
def test_matching_never_sends_a_pre_sliced_file_to_the_wrong_kind_of_printer(
    jobs: list[Job], printers: list[Printer]
) -> None:
    by_job = {j.id: j for j in jobs}
    by_printer = {p.id: p for p in printers}
    for dispatch in match(jobs, printers):
        family = job_family(by_job[dispatch.job_id])
        assert family is None or family == printer_family(by_printer[dispatch.printer_id])


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, printers_strategy)
def test_explain_says_matched_exactly_for_the_printers_match_would_use(
    jobs: list[Job], printers: list[Printer]
) -> None:
    for candidate in jobs:
        explained = {v.printer_id for v in explain(candidate, [(p, False) for p in printers], T0)
                     if v.result == "matched"}
        usable = {p.id for p in printers if match([candidate], [p])}
        assert explained == usable


MODELS = ["X1C", "P1S", "Voron 2.4", "Prusa MK4"]
sliced_strategy = st.dictionaries(
    st.sampled_from(["b0", "b1"]),
    st.frozensets(st.tuples(st.sampled_from(MODELS), st.booleans(), st.sampled_from(["bambu", "gcode"]))),
)
modelled_printers = st.lists(
    st.builds(
        lambda i, idle, protocol, model, fabmatic: _modelled(printer(f"p{i}", idle_minutes=idle, protocol=protocol),
                                                             model, fabmatic),
        st.integers(0, 5),
        st.integers(0, 100),
        st.sampled_from(PROTOCOLS),
        st.sampled_from(MODELS),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda p: p.id,
)


def _modelled(made: Printer, model: str, fabmatic: bool) -> Printer:
    made.model, made.fabmatic = model, fabmatic
    return made


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.builds(lambda i, b: sliced_job(f"j{i}", basis=b, order_age=i), st.integers(0, 9),
                       st.sampled_from(["b0", "b1"])), max_size=8, unique_by=lambda j: j.id),
    modelled_printers,
    sliced_strategy,
)
def test_a_sliced_job_goes_only_where_a_slice_of_its_model_and_family_exists(
    jobs: list[Job], printers: list[Printer], sliced: dict[str, frozenset[tuple[str, bool, str]]]
) -> None:
    by_job = {j.id: j for j in jobs}
    by_printer = {p.id: p for p in printers}
    got = match(jobs, printers, sliced)  # type: ignore[arg-type]
    for dispatch in got:
        chosen = by_printer[dispatch.printer_id]
        basis = by_job[dispatch.job_id].slice_basis or ""
        assert (chosen.model, chosen.fabmatic, printer_family(chosen)) in sliced.get(basis, frozenset())
    # And nothing that could go is left: every idle printer not taken has no slice for any waiting job.
    taken = {d.printer_id for d in got}
    waiting = [j for j in jobs if j.id not in {d.job_id for d in got}]
    for idle in (p for p in printers if p.id not in taken):
        takes = (idle.model, idle.fabmatic, printer_family(idle))
        assert not [j for j in waiting if takes in sliced.get(j.slice_basis or "", frozenset())]


def reference_match(
    jobs: list[Job], printers: list[Printer], sliced: dict[str, frozenset[tuple[str, bool, str]]], tolerance: float
) -> list[tuple[str, str]]:
    """`match` as its docstring defines it, with nothing indexed: each queued job in queue order is compared with
    every free printer, in idle order, by the per-printer rules (`fits`, and the slice's model and family)."""
    free = sorted(printers, key=idle_order)
    chosen: list[tuple[str, str]] = []
    for candidate in sorted((j for j in jobs if j.status == "queued"), key=job_order):
        models = sliced.get(candidate.slice_basis, frozenset()) if candidate.slice_basis is not None else None
        requirement = Requirement.of_job(candidate, models, tolerance)  # type: ignore[arg-type]
        for idle in free:
            target = printer_target(idle)
            takes = (target[0], target[1], printer_family(idle)) if target is not None else None
            if fits(idle, requirement) and (requirement.models is None or takes in requirement.models):
                free.remove(idle)
                chosen.append((candidate.id, idle.id))
                break
    return chosen


SPOOL_COLOURS = ["FF0000FF", "F50A0AFF", "00FF00FF", "0A0AF5FF", "RED"]
JOB_COLOURS = [None, "#FF0000", "#F80808", "#00FF00", "#0000FF", "red"]
PROFILES = [None, "", "fast", "fine"]


def _equipped(made: Printer, model: str, fabmatic: bool) -> Printer:
    made.model, made.fabmatic = model, fabmatic
    return made


fleet_strategy = st.lists(
    st.builds(
        lambda i, mats, idle, tags, protocol, model, fabmatic: _equipped(
            printer(f"p{i}", *mats, idle_minutes=idle, tags=tuple(tags), protocol=protocol), model, fabmatic
        ),
        st.integers(0, 11),
        st.lists(
            st.builds(
                LoadedMaterial,
                slot=st.sampled_from([0, 1, 2, 254]),
                type=st.sampled_from([*TYPES, "pla", " Petg "]),
                color=st.sampled_from(SPOOL_COLOURS),
                profile=st.sampled_from(PROFILES),
            ),
            min_size=1,
            max_size=4,
        ),
        st.integers(0, 30),
        st.sets(st.sampled_from([*TAGS, "C"])),
        st.sampled_from(PROTOCOLS),
        st.sampled_from(["", *MODELS[:2]]),
        st.booleans(),
    ),
    max_size=12,
    unique_by=lambda p: p.id,
)


def _queued(
    i: int, kind: str, colour: str | None, profile: str | None, assignment: Assignment, basis: str | None,
    prio: str, age: int, status: str,
) -> Job:
    made = job(f"j{i}", Material(kind, colour, profile), assignment, priority=prio, order_age=age,
               kind=KINDS[i % len(KINDS)], copy=i)
    made.slice_basis = basis
    made.status = status  # type: ignore[assignment]
    return made


queue_strategy = st.lists(
    st.builds(
        _queued,
        st.integers(0, 80),
        st.sampled_from(TYPES),
        st.sampled_from(JOB_COLOURS),
        st.sampled_from(PROFILES),
        st.one_of(
            st.just(Assignment()),
            st.builds(lambda i: Assignment("printer", f"p{i}"), st.integers(0, 12)),
            st.builds(lambda t: Assignment("tags", tags=tuple(t)), st.sets(st.sampled_from([*TAGS, "c"]))),
        ),
        st.sampled_from([None, "b0", "b1"]),
        st.sampled_from(["normal", "low"]),
        st.integers(0, 4),
        st.sampled_from(["queued", "queued", "queued", "waiting_for_file", "assigned"]),
    ),
    max_size=40,
    unique_by=lambda j: j.id,
)


@settings(max_examples=400, deadline=None)
@given(queue_strategy, fleet_strategy, sliced_strategy, st.sampled_from([0.0, 2.0, 5.0, 40.0]))
def test_match_makes_the_reference_decisions_for_colours_profiles_tags_pins_and_slices(
    jobs: list[Job], printers: list[Printer], sliced: dict[str, frozenset[tuple[str, bool, str]]], tolerance: float
) -> None:
    """The indexed matcher (shelves, heaps of their fronts) against the plain definition, over every rule that
    decides a fit at once: colour within a tolerance, profiles, tags, pinned printers, kinds of file, slices."""
    got = match(jobs, printers, sliced, tolerance)  # type: ignore[arg-type]
    assert [(d.job_id, d.printer_id) for d in got] == reference_match(jobs, printers, sliced, tolerance)
