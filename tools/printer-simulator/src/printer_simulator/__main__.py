"""``python -m printer_simulator``: run a fleet of simulated Bambu printers until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from printer_simulator.catalog import PrinterSpec, default_fleet, parse_fleet
from printer_simulator.control import ControlServer
from printer_simulator.fleet import Fleet, write_json_atomically

log = logging.getLogger("printer_simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m printer_simulator", description=__doc__)
    parser.add_argument("--fleet", default="default", help="fleet JSON file, or 'default' (4 printers)")
    parser.add_argument("--state-dir", type=Path, default=Path(".printer-simulator"), help="keeps the test CA")
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=0, help="0 = any free port (see the out file)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address of printers without their own host")
    parser.add_argument("--time-scale", type=float, default=600.0, help="printer seconds per real second")
    parser.add_argument("--report-interval", type=float, default=1.0, help="real seconds between reports")
    parser.add_argument("--out", type=Path, default=None, help="fleet info JSON (default: STATE_DIR/fleet-info.json)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (as beside the services): its TLS transports and timers are compiled, and a
    thousand printers' TLS writes were most of this process's CPU on the standard loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def load_fleet(source: str) -> list[PrinterSpec]:
    if source == "default":
        return default_fleet()
    return parse_fleet(json.loads(Path(source).read_text()))


async def run(args: argparse.Namespace, specs: list[PrinterSpec], out: Path) -> None:
    fleet = Fleet(args.state_dir, host=args.host, time_scale=args.time_scale, report_interval=args.report_interval)
    control_url = ""

    def write_out() -> None:
        write_json_atomically(out, fleet.info(control_url))

    control = ControlServer(fleet, on_change=write_out)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start(specs)
        control_url = await control.start(args.control_host, args.control_port)
        write_out()
        log.info("%d printers listening; control API %s; fleet info %s", len(fleet.printers), control_url, out)
        await stop.wait()
        log.info("stopping")
    finally:
        await control.stop()
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out: Path = args.out or args.state_dir / "fleet-info.json"
    with contextlib.suppress(FileNotFoundError):
        out.unlink()  # nobody waiting for the file may read a previous run's ports
    try:
        specs = load_fleet(args.fleet)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(run(args, specs, out))
    except (ValueError, OSError) as exc:
        log.error("cannot run the simulator: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
