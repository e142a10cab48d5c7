"""The print lifecycle on its own, with time given by the test: a print left alone ends in FINISH, progress
never runs backwards within a print, and a run-out pauses where it was armed with the error of that moment."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from printer_simulator.catalog import parse_materials
from printer_simulator.lifecycle import FAILED, FINISH, IDLE, PAUSE, PREPARE, RUNNING, Job, PrintLifecycle
from printer_simulator.project import JobRefused

MATERIALS = parse_materials([{"slot": 2, "type": "PLA", "color": "#000000"}])


def lifecycle(run_out: tuple[int, list[dict[str, int]]] = (7, [{"attr": 1, "code": 2}])) -> PrintLifecycle:
    return PrintLifecycle("SIM", MATERIALS, lambda: run_out)


def job(refused: JobRefused | None = None) -> Job:
    return Job("a.gcode.3mf", "ftp:///a.gcode.3mf", "Metadata/plate_1.gcode", "a", [], True, 3600.0, 40, refused)


def test_a_print_prepares_runs_and_finishes_on_the_tray_it_was_given() -> None:
    printer = lifecycle()
    printer.start(job(), 0.0, prepare_seconds=1.0, run_seconds=10.0, hms_at=None)
    printer.record_start("now")
    assert printer.gcode_state == PREPARE and printer.next_transition() == 1.0
    assert printer.advance(1.0) and printer.gcode_state == RUNNING and printer.tray_now == 2
    assert printer.progress(6.0)[0] == 50
    assert printer.advance(11.0) and printer.gcode_state == FINISH
    assert printer.progress(11.0) == (100, 0, 40, 100)
    assert printer.starts[-1]["outcome"] == "finished"


def test_a_refused_job_fails_after_prepare_and_a_cancel_goes_idle_a_second_later() -> None:
    printer = lifecycle()
    printer.start(job(JobRefused(0x0500_4003, "no")), 0.0, prepare_seconds=1.0, run_seconds=10.0, hms_at=None)
    printer.advance(1.0)
    assert (printer.gcode_state, printer.print_error, printer.next_transition()) == (FAILED, 0x0500_4003, None)

    printer.start(job(), 2.0, prepare_seconds=1.0, run_seconds=10.0, hms_at=None)
    printer.advance(5.0)
    assert printer.cancel(5.0) and printer.gcode_state == FAILED
    assert printer.progress(5.5)[0] == 20, "the progress of the moment it was stopped stays shown"
    assert printer.advance(6.0) and printer.gcode_state == IDLE and printer.print_error == 0
    assert not printer.cancel(6.0)


def test_a_run_out_pauses_where_armed_with_the_error_of_that_moment() -> None:
    shown = (7, [{"attr": 1, "code": 2}])
    printer = PrintLifecycle("SIM", MATERIALS, lambda: shown)
    printer.start(job(), 0.0, prepare_seconds=0.0, run_seconds=10.0, hms_at=None)
    printer.advance(0.0)
    assert printer.arm_run_out(1.0, 30.0)
    shown = (9, [{"attr": 3, "code": 4}])  # the switches changed after arming
    assert printer.advance(4.0) and printer.gcode_state == PAUSE
    assert (printer.print_error, printer.hms, printer.progress(4.0)[0]) == (9, [{"attr": 3, "code": 4}], 30)
    assert printer.resume(5.0) and printer.hms == [] and printer.print_error == 0
    assert printer.advance(12.0) and printer.gcode_state == FINISH
    assert not printer.arm_run_out(12.0, None), "nothing under way: the caller keeps it for the next print"


operations = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5.0, allow_nan=False),
        st.sampled_from(["advance", "pause", "resume", "arm", "end_prepare", "end_run"]),
    ),
    max_size=40,
)


@given(operations)
@example([(3.0, "arm"), (5.0, "advance"), (5.0, "pause"), (0.0, "resume")])  # a pause overtook the run-out
def test_progress_never_runs_backwards_within_a_print_and_a_print_left_alone_ends(ops: list[tuple[float, str]]) -> None:
    printer = lifecycle()
    now = 0.0
    printer.start(job(), now, prepare_seconds=2.0, run_seconds=20.0, hms_at=None)
    last = printer.progress(now)
    for step, operation in ops:
        now += step
        if operation == "advance":
            printer.advance(now)
        elif operation == "pause":
            printer.pause(now)
        elif operation == "resume":
            printer.resume(now)
        elif operation == "arm":
            printer.arm_run_out(now, None)
        elif operation == "end_prepare":
            printer.end_prepare(now)
        else:
            printer.end_run(now)
        printer.advance(now)
        progress = printer.progress(now)
        assert 0 <= progress[0] <= 100 and 0 <= progress[3] <= 100
        assert progress[0] >= last[0] and progress[2] >= last[2], (operation, last, progress)
        last = progress
    printer.resume(now)
    for _ in range(3):  # each wait reaches the next transition: prepare, a run-out, the end
        due = printer.next_transition()
        if due is not None:
            printer.advance(due)
        printer.resume(due or now)
    assert printer.gcode_state == FINISH
