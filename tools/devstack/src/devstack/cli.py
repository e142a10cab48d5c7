"""`python -m devstack run|up|down|status`: the dev stack from a terminal (see the README beside this package)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.process import tail
from devstack.stack import LAUNCHER_LOG, Stack
from devstack.statefile import launcher_running, read_state, remove_state
from devstack.waiting import wait_until

# Infrastructure logs stay in their files; the services' and the simulator's are echoed.
_NOT_ECHOED = frozenset({"postgres.log", "nats.log", LAUNCHER_LOG})
_COLOURS = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run the printfarm stack locally: PostgreSQL, NATS, the printer simulator and every service.",
    )
    parser.add_argument(
        "command",
        choices=["run", "up", "down", "status"],
        help="run: start in the foreground until Ctrl-C; up: start in the background; "
        "down: stop a background stack; status: show what runs and whether it is healthy",
    )
    parser.add_argument("--data-dir", type=Path, help="data and logs (default $DEVSTACK_DATA_DIR or ./.data)")
    parser.add_argument("--port", type=int, help="API gateway port (default $PORT or 8080)")
    parser.add_argument(
        "--service-port", action="append", default=[], metavar="SERVICE=PORT",
        help="port of one service, e.g. orders=18092 (default $<SERVICE>_PORT, 18081-18084 and 18086 for the slicer)",
    )
    parser.add_argument("--nats-port", type=int, help="embedded NATS client port (default $NATS_PORT or 14222)")
    parser.add_argument("--nats-monitor-port", type=int, help="NATS monitoring port (default 18222)")
    parser.add_argument("--sim-control-port", type=int, help="simulator control port (default 18085)")
    parser.add_argument("--time-scale", type=float, help="simulator speed-up ($SIMULATOR_TIME_SCALE)")
    parser.add_argument("--fleet", help="simulator fleet name (default 'default')")
    parser.add_argument("--log-level", help="LOG_LEVEL given to every service (default INFO)")
    parser.add_argument("--services", help="comma-separated services to start (default: all)")
    parser.add_argument("--no-simulator", action="store_true", help="do not start the printer simulator")
    parser.add_argument("--startup-timeout", type=float, help="seconds each component may take to be ready")
    parser.add_argument("--quiet", action="store_true", help="run: do not echo the services' logs")
    return parser


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> StackConfig:
    config = StackConfig.from_env(environ, data_dir=args.data_dir)
    changes: dict[str, Any] = {}
    ports = dict(config.service_ports)
    if args.port is not None:
        ports["api_gateway"] = args.port
    for item in args.service_port:
        name, _, port = item.partition("=")
        if not port.isdigit():
            raise StackError(f"--service-port wants SERVICE=PORT, got {item!r}")
        ports[name.replace("-", "_")] = int(port)
    changes["service_ports"] = ports
    for option, field in [
        ("nats_port", "nats_port"), ("nats_monitor_port", "nats_monitor_port"),
        ("sim_control_port", "simulator_control_port"), ("time_scale", "simulator_time_scale"),
        ("fleet", "fleet"), ("log_level", "log_level"), ("startup_timeout", "startup_timeout"),
    ]:
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    if args.services is not None:
        changes["services"] = tuple(name.strip() for name in args.services.split(",") if name.strip())
    if args.no_simulator:
        changes["start_simulator"] = False
    return dataclasses.replace(config, **changes)


FIRST_ADMIN_FILE = Path("api_gateway") / "first-admin.json"
FIRST_ADMIN_SHOWN = Path("api_gateway") / "first-admin.shown"


def first_admin_once(data_dir: Path) -> str | None:
    """The web UI's first admin login, the first time the stack runs on this data folder and never again."""
    credentials, shown = data_dir / FIRST_ADMIN_FILE, data_dir / FIRST_ADMIN_SHOWN
    if shown.exists() or not credentials.exists():
        return None
    try:
        first = json.loads(credentials.read_text())
    except (OSError, ValueError):
        return None
    shown.touch()
    return (
        f"  web UI login {first.get('username')} / {first.get('password')}   "
        f"(shown once; kept owner-only in {credentials} until you change it: \"Password\" in the web UI)"
    )


def describe(state: dict[str, Any]) -> str:
    """The 'where is everything' summary, from a stack's state."""
    lines = [f"printfarm dev stack: {state['status']} (launcher pid {state['pid']}, data in {state['data_dir']})"]
    if "api_gateway-1" in state["processes"]:
        lines.append(f"  API          {state['api_url']}   docs {state['docs_url']}")
        lines.append(f"  API token    API_TOKEN=$(cat {state['api_token_file']})")
    for name, process in state["processes"].items():
        if "url" in process:
            lines.append(f"  {name:<20} {process['url']}")
    monitor = f"   monitor {state['nats_monitor_url']}" if state.get("nats_monitor_url") else ""
    lines.append(f"  NATS         {state['nats_url']}{monitor}")
    if state.get("postgres_socket_dir"):
        lines.append(f"  PostgreSQL   unix socket in {state['postgres_socket_dir']}")
    for name, url in state["database_urls"].items():
        lines.append(f"    {name:<18} {url}")
    if state.get("simulator"):
        sim = state["simulator"]
        lines.append(f"  simulator    {sim['control_url']}   printers: {', '.join(sim['printers'])}")
    if state.get("registered"):
        lines.append(f"  registered   {', '.join(state['registered'])}")
    lines.append(f"  logs         {state['log_dir']}")
    return "\n".join(lines)


async def follow_logs(log_dir: Path, out: TextIO) -> None:
    """Echo new lines of the services' log files with a prefix naming the process."""
    reader = LogEcho(log_dir, out)
    while True:
        reader.echo_new_lines()
        await asyncio.sleep(0.25)


class LogEcho:
    """Remembers how far each log file was echoed; a file that shrank was recreated and starts over."""

    def __init__(self, log_dir: Path, out: TextIO) -> None:
        self.log_dir = log_dir
        self.out = out
        self.colour = out.isatty()
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}

    def echo_new_lines(self) -> None:
        for log in sorted(self.log_dir.glob("*.log")):
            if log.name in _NOT_ECHOED:
                continue
            with contextlib.suppress(FileNotFoundError), log.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                offset = self.offsets.get(log, 0)
                if offset > size:
                    offset, self.partial[log] = 0, b""
                f.seek(offset)
                data = f.read()
            self.offsets[log] = offset + len(data)
            *complete, self.partial[log] = (self.partial.get(log, b"") + data).split(b"\n")
            for line in complete:
                self.out.write(f"{_prefix(log.stem, self.colour)} {line.decode(errors='replace')}\n")
        self.out.flush()


def _prefix(name: str, colour: bool) -> str:
    label = f"{name:>17} |"
    if not colour:
        return label
    return f"\033[{_COLOURS[zlib.crc32(name.encode()) % len(_COLOURS)]}m{label}\033[0m"


def report_supervision(out: TextIO) -> None:
    """The supervisor's restarts and crash loops go to the terminal (and to the launcher log under `up`)."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("devstack: %(message)s"))
    logger = logging.getLogger("devstack")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


async def run(config: StackConfig, *, echo: bool) -> int:
    """Start the stack, print where things are, keep its children alive, and stop it on Ctrl-C or SIGTERM."""
    report_supervision(sys.stderr)
    stack = Stack(config)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    echoing = asyncio.create_task(follow_logs(stack.log_dir, sys.stdout)) if echo else None
    stopper = asyncio.create_task(stop_requested.wait())
    try:
        starting = asyncio.create_task(stack.start())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            print("devstack: stopping before start-up finished", file=sys.stderr)
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StackError):
                await starting
            return 0
        if starting.exception() is not None:
            print(f"devstack: {starting.exception()}", file=sys.stderr)
            return 1
        print(describe(stack.state("ready")), flush=True)
        first_login = first_admin_once(stack.data_dir)
        if first_login:
            print(first_login, flush=True)
        print("Ctrl-C stops everything; a process that dies is restarted.", flush=True)
        await stopper
        print("devstack: stopping", file=sys.stderr, flush=True)
        await stack.stop()
        return 0
    finally:
        stopper.cancel()
        if echoing is not None:
            echoing.cancel()


def up(config: StackConfig, forwarded: Sequence[str]) -> int:
    """`run` in the background: returns once the stack is ready, or fails with the launcher's last lines."""
    if launcher_running(config.data_dir):
        print(f"a dev stack already runs on {config.data_dir}")
        return asyncio.run(status(config))
    log = config.data_dir / "logs" / LAUNCHER_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "devstack", *forwarded, "--quiet"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def ready() -> bool:
        if launcher.poll() is not None:
            raise StackError(f"the launcher exited with code {launcher.returncode}:\n{tail(log, 40)}")
        state = read_state(config.data_dir)
        return state is not None and state["pid"] == launcher.pid and state["status"] == "ready"

    asyncio.run(wait_until(ready, config.startup_timeout * 3, "the dev stack to be ready", interval=0.2))
    state = read_state(config.data_dir)
    assert state is not None
    print(describe(state))
    print(f"Stop it with `python -m devstack down`; launcher log: {log}")
    return 0


async def down(config: StackConfig) -> int:
    state = read_state(config.data_dir)
    if not launcher_running(config.data_dir) or state is None:
        remove_state(config.data_dir)
        print(f"no dev stack runs on {config.data_dir}")
        return 0
    os.kill(int(state["pid"]), signal.SIGTERM)
    await wait_until(lambda: not launcher_running(config.data_dir), 120, "the dev stack to stop", interval=0.2)
    print("dev stack stopped")
    return 0


async def status(config: StackConfig) -> int:
    """Exit 0 when every process lives and answers its health check, 1 otherwise, 3 when none runs."""
    state = read_state(config.data_dir)
    if not launcher_running(config.data_dir) or state is None:
        print(f"no dev stack runs on {config.data_dir}")
        return 3
    print(describe(state))
    healthy = state["status"] == "ready"
    async with httpx.AsyncClient(timeout=3, trust_env=False) as client:
        for name, process in state["processes"].items():
            verdict = "running" if _alive(process["pid"]) else "NOT RUNNING"
            if process.get("state", "running") != "running":
                verdict = str(process["state"])  # restarting, crash-loop
            if verdict == "running" and "url" in process:
                verdict = await _health(client, f"{process['url']}/health")
            healthy = healthy and verdict in ("running", "ok")
            restarts = ""
            if process.get("restarts"):
                restarts = f" (restarted {process['restarts']}x, last: {process['last_exit']})"
            print(f"  {name:<20} pid {process['pid']}: {verdict}{restarts}")
        if state["processes"].get("api_gateway-1"):
            print(f"  /api/v1/health: {await _health(client, state['api_url'] + '/api/v1/health')}")
    return 0 if healthy else 1


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _health(client: httpx.AsyncClient, url: str) -> str:
    try:
        response = await client.get(url)
    except httpx.TransportError as e:
        return f"unreachable ({type(e).__name__})"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and "status" in body:
            return str(body["status"])
    return "ok"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        config = config_from(args, dict(os.environ))
        if args.command == "run":
            return asyncio.run(run(config, echo=not args.quiet))
        if args.command == "up":
            forwarded = list(argv)
            forwarded[forwarded.index("up")] = "run"
            return up(config, forwarded)
        if args.command == "down":
            return asyncio.run(down(config))
        return asyncio.run(status(config))
    except (StackError, TimeoutError) as e:
        print(f"devstack: {e}", file=sys.stderr)
        return 1
