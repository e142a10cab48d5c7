"""The dev stack launcher itself: real NATS and embedded PostgreSQL, and stand-in services.

The stand-ins are tiny stdlib HTTP servers placed first on PYTHONPATH under the real module names
(``python -m orders`` runs them), so the launcher's contract with the services is checked here
without depending on the services' own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from devstack import SERVICES, Stack, StackConfig, StackError, wait_until
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn
from devstack.process import ManagedProcess
from devstack.statefile import STATE_FILE
from devstack.supervisor import RestartPolicy

pytestmark = pytest.mark.integration

FAKE_SERVICE = textwrap.dedent(
    '''
    """Stand-in for a printfarm service or the simulator, driven by the launcher's environment."""
    import asyncio, json, os, sys, urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path


    def database_name(url):
        import asyncpg
        async def ask():
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                return await conn.fetchval("SELECT current_database()")
            finally:
                await conn.close()
        return asyncio.run(ask())


    def serve(module):
        if os.environ.get("FAKE_CRASH") == module:
            print("fake migration failed: relation does not exist", flush=True)
            sys.exit(3)
        if (Path(os.environ["DATA_DIR"]) / "crash").exists():
            print("fake crash at start", flush=True)
            sys.exit(3)
        current_db = database_name(os.environ["DATABASE_URL"])
        store = Path(os.environ["DATA_DIR"]) / "printers.json"

        class Handler(BaseHTTPRequestHandler):
            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def let_in(self):
                if module != "api_gateway" or not self.path.startswith("/api/"):
                    return True
                if self.headers.get("Authorization") == "Bearer " + os.environ["API_TOKEN"]:
                    return True
                self.reply(401, {"title": "Unauthorized"})
                return False

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/health":
                    return self.reply(200, {"status": "ok"})
                if not self.let_in():
                    return
                if url.path == "/api/v1/health":
                    return self.reply(200, {"status": "ok", "services": {}})
                if url.path == "/env":
                    env = {k: v for k, v in os.environ.items() if k.isupper()}
                    return self.reply(200, {"env": env, "database": current_db, "pid": os.getpid()})
                if url.path == "/api/v1/printers" and module == "api_gateway":
                    items = json.loads(store.read_text()) if store.exists() else []
                    start = int(dict(urllib.parse.parse_qsl(url.query)).get("cursor", 0))
                    page = items[start:start + 2]  # small pages, so the launcher must follow the cursor
                    more = start + 2 < len(items)
                    return self.reply(200, {"items": page, "next_cursor": str(start + 2) if more else None})
                self.reply(404, {"title": "not found"})

            def do_POST(self):
                if not self.let_in():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/api/v1/printers" or module != "api_gateway" or not body.get("access_code"):
                    return self.reply(400, {"title": "bad request"})
                items = json.loads(store.read_text()) if store.exists() else []
                saved = {k: v for k, v in body.items() if k != "access_code"}
                saved["id"] = str(len(items) + 1)
                items.append(saved)
                store.write_text(json.dumps(items))
                self.reply(201, saved)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
        print(f"{os.environ['SERVICE_INSTANCE']} listening on {os.environ['PORT']}", flush=True)
        server.serve_forever()


    def simulate(argv):
        args = dict(zip(argv[::2], argv[1::2]))
        port = int(args["--control-port"])
        printers = [
            {"name": f"sim-{i}", "serial": f"01S00C{i:09d}", "model": "X1C", "host": "127.0.0.1",
             "port": 20000 + i, "ftp_port": 21000 + i, "access_code": f"secret{i:02d}",
             "tags": ["fast"] if i % 2 else [], "fabmatic": i == 3, "materials": [{"slot": 0, "type": "PLA"}]}
            for i in range(1, 4)
        ]

        class Control(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Control)
        Path(args["--out"]).write_text(json.dumps({
            "ca_cert": "-----BEGIN CERTIFICATE-----fake", "control_url": f"http://127.0.0.1:{port}",
            "printers": printers, "time_scale": args.get("--time-scale")}))
        server.serve_forever()
    '''
)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that makes ``python -m <service>`` run the stand-ins."""
    folder = tmp_path_factory.mktemp("fakes")
    (folder / "devstack_fake.py").write_text(FAKE_SERVICE)
    for spec in SERVICES:
        (folder / f"{spec.module}.py").write_text(f"import devstack_fake\ndevstack_fake.serve({spec.name!r})\n")
    (folder / "printer_simulator.py").write_text("import sys, devstack_fake\ndevstack_fake.simulate(sys.argv[1:])\n")
    return {"PYTHONPATH": str(folder)}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh folder outside pytest's private temp root, which another account could not enter."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-devstack-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
async def infra() -> AsyncIterator[Stack]:
    """PostgreSQL and NATS only, no service processes."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-devstack-infra-"))
    async with Stack(StackConfig.for_tests(folder, services=(), start_simulator=False)) as stack:
        yield stack
    shutil.rmtree(folder, ignore_errors=True)


def alive(pid: int | None) -> bool:
    """Running, and not a zombie waiting for a parent that will never reap it."""
    assert pid is not None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_using(folder: Path) -> list[int]:
    """Live processes whose command line mentions ``folder`` (children of any launcher)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if os.fsencode(folder) in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


async def test_nats_jetstream_answers(infra: Stack) -> None:
    client = await nats.connect(infra.nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name="DEVSTACK_TEST", subjects=["devstack.test.>"])
        ack = await js.publish("devstack.test.hello", b"hi")
        message = await (await js.pull_subscribe("devstack.test.>", durable="t")).fetch(1, timeout=5)
    finally:
        await client.close()
    assert ack.stream == "DEVSTACK_TEST"
    assert message[0].data == b"hi"


async def test_each_service_gets_its_own_database_usable_by_sqlalchemy(infra: Stack) -> None:
    assert set(infra.database_urls) == {spec.name for spec in SERVICES}
    for spec in SERVICES:
        engine = create_async_engine(infra.database_urls[spec.name])
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT current_database()"))).scalar() == spec.database
        finally:
            await engine.dispose()


async def test_ports_and_socket_stay_clear_of_the_system_servers(infra: Stack) -> None:
    defaults = StackConfig.from_env({})
    taken = {4222, 5432, 1883, 8883}
    assert not taken & set(defaults.ports_to_bind().values())
    assert infra.nats is not None and infra.nats.port not in taken
    assert infra.postgres is not None
    conn = await asyncpg.connect(asyncpg_dsn(infra.postgres.server_url))
    try:
        assert await conn.fetchval("SHOW listen_addresses") == ""
        assert await conn.fetchval("SHOW unix_socket_directories") == str(infra.postgres.socket_dir)
    finally:
        await conn.close()
    assert infra.postgres.socket_dir.is_relative_to(infra.data_dir)


async def test_postgres_data_survives_a_restart(infra: Stack) -> None:
    assert infra.postgres is not None
    url = asyncpg_dsn(infra.database_urls["orders"])
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE kept (note text)")
    await conn.execute("INSERT INTO kept VALUES ('still here')")
    await conn.close()
    old_pid = infra.postgres.process.pid if infra.postgres.process else None

    await infra.restart_postgres()

    assert infra.postgres.process is not None and infra.postgres.process.pid != old_pid
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT note FROM kept") == "still here"
    finally:
        await conn.close()


async def test_a_test_servers_cluster_is_a_copy_of_a_fresh_initdb_not_another_run_nor_a_live_cluster(
    infra: Stack, data_dir: Path
) -> None:
    """Test stacks copy the first cluster this process initialised: the copy must be as initdb left it."""
    assert infra.postgres is not None and infra.postgres.reuse_initdb
    conn = await asyncpg.connect(asyncpg_dsn(infra.postgres.server_url))
    try:
        await conn.execute("CREATE DATABASE only_in_the_first")
    finally:
        await conn.close()
    second = EmbeddedPostgres(data_dir / "pg", data_dir / "pg.log", fsync=False, reuse_initdb=True)
    await second.start(60)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(second.server_url))
        try:
            databases = {row["datname"] for row in await conn.fetch("SELECT datname FROM pg_database")}
        finally:
            await conn.close()
    finally:
        await second.stop(20)
    assert "postgres" in databases and "only_in_the_first" not in databases
    assert "The files belonging to this database system" not in (data_dir / "pg.log").read_text()


async def test_stop_ends_every_process_and_a_new_stack_finds_the_data(data_dir: Path) -> None:
    config = StackConfig.for_tests(data_dir, services=(), start_simulator=False)
    async with Stack(config) as first:
        pids = [p.pid for p in first.processes()]
        conn = await asyncpg.connect(asyncpg_dsn(first.database_urls["skus"]))
        await conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        await conn.close()
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)
    assert processes_using(data_dir) == []
    assert not (data_dir / STATE_FILE).exists()

    async with Stack(StackConfig.for_tests(data_dir, services=(), start_simulator=False)) as second:
        conn = await asyncpg.connect(asyncpg_dsn(second.database_urls["skus"]))
        try:
            assert await conn.fetchval("SELECT answer FROM kept") == 42
        finally:
            await conn.close()


async def test_services_get_the_contract_environment_and_printers_are_registered_once(
    data_dir: Path, fakes: dict[str, str]
) -> None:
    config = StackConfig.for_tests(data_dir, extra_env=fakes, time_scale=7)
    async with Stack(config) as stack, httpx.AsyncClient(
        base_url=stack.api_url, headers=stack.api_headers, trust_env=False
    ) as api:
        assert stack.sim is not None and len(stack.sim.printers) == 3
        assert stack.sim.fleet["time_scale"] == "7"
        assert stack.registration is not None and len(stack.registration.created) == 3
        listed = (await api.get("/api/v1/printers", params={"limit": 500})).json()
        assert listed["next_cursor"] is not None  # the stand-in pages by two: registration followed it
        for spec in SERVICES:
            instance = stack.instance(spec.name)
            seen = (await api.get(f"{instance.url}/env")).json()
            env = seen["env"]
            assert seen["database"] == spec.database
            assert env["PORT"] == str(config.service_ports[spec.name])
            assert env["HOST"] == "127.0.0.1"
            assert env["SERVICE_INSTANCE"] == f"{spec.name}-1"
            assert env["NATS_URL"] == stack.nats_url
            assert env["DATA_DIR"] == str(data_dir / spec.name)
            assert env["LOG_LEVEL"] == config.log_level
        gateway_env = (await api.get("/env")).json()["env"]
        assert gateway_env["ORDERS_URL"] == stack.service_url("orders")
        assert gateway_env["QUEUE_URL"] == stack.service_url("printqueue")
        assert gateway_env["PRINTER_GATEWAY_URL"] == stack.service_url("printer-gateway")
        assert gateway_env["SKUS_URL"] == stack.service_url("skus")
        assert gateway_env["API_TOKEN"] == stack.api_token
        assert stack.api_token_file.stat().st_mode & 0o077 == 0
        state_text = (data_dir / STATE_FILE).read_text()
        assert json.loads(state_text)["status"] == "ready"
        assert "secret0" not in state_text and stack.api_token not in state_text
        token = stack.api_token

    async with Stack(StackConfig.for_tests(data_dir, extra_env=fakes)) as again:
        assert again.registration is not None
        assert again.registration.created == ()
        assert len(again.registration.already_registered) == 3
        assert again.api_token == token  # scripts given the token keep working after a restart
    assert "secret0" not in "".join(p.read_text() for p in (data_dir / "logs").glob("*.log"))


async def test_restart_kill_and_extra_instances(data_dir: Path, fakes: dict[str, str]) -> None:
    async with Stack(StackConfig.for_tests(data_dir, extra_env=fakes)) as stack, httpx.AsyncClient(
        trust_env=False
    ) as http:
        orders = stack.instance("orders")
        old_pid = orders.process.pid
        restarted = await stack.restart_service("orders")
        assert restarted.process.pid != old_pid and not alive(old_pid)
        assert (await http.get(f"{restarted.url}/health")).status_code == 200

        code = await stack.kill_service("printer_gateway")
        assert code == -signal.SIGKILL
        second = await stack.start_service("printer_gateway", instance="printer_gateway-2")
        assert second.port != stack.instance("printer_gateway-1").port
        env = (await http.get(f"{second.url}/env")).json()["env"]
        assert env["SERVICE_INSTANCE"] == "printer_gateway-2"

        replica = await stack.start_service("printqueue")
        assert replica.name == "queue-2"
        assert (await http.get(f"{replica.url}/health")).status_code == 200
        with pytest.raises(StackError, match="already running"):
            await stack.start_service("queue", instance="queue-2")

        revived = await stack.start_service("printer_gateway", instance="printer_gateway-1")
        assert revived.port == stack.config.service_ports["printer_gateway"]
        pids = [p.pid for p in stack.processes()]
    assert not any(alive(pid) for pid in pids)


QUICK_RESTARTS = RestartPolicy(initial_delay=0.1, max_delay=1.0, stable_after=5.0, crash_loop_exits=3)


async def test_every_kind_of_child_killed_with_sigkill_is_restarted_and_keeps_its_data(
    data_dir: Path, fakes: dict[str, str]
) -> None:
    config = StackConfig.for_tests(data_dir, extra_env=fakes, restart_policy=QUICK_RESTARTS)
    async with Stack(config) as stack, httpx.AsyncClient(trust_env=False) as http:
        assert stack.postgres is not None and stack.nats is not None
        orders_db = asyncpg_dsn(stack.database_urls["orders"])
        conn = await asyncpg.connect(orders_db)
        await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        await conn.close()
        by_name = {p.name: p for p in stack.processes()}
        for name in ("postgres", "nats", "simulator", "orders-1", "api_gateway-1"):
            process = by_name[name]
            old_pid = process.pid
            assert old_pid is not None
            os.kill(old_pid, signal.SIGKILL)

            def back(name: str = name, old_pid: int = old_pid) -> bool:
                now = {p.name: p for p in stack.processes()}[name]
                return now.pid != old_pid and now.running and stack.supervisor.status(name).state == "running"

            await wait_until(back, 30, f"{name} to be restarted")
            assert stack.supervisor.status(name).last_exit == "killed by SIGKILL"
            assert not alive(old_pid)
        conn = await asyncpg.connect(orders_db)
        try:
            assert await conn.fetchval("SELECT note FROM kept") == "still here"
        finally:
            await conn.close()
        assert (await http.get(f"{stack.nats.monitor_url}/healthz")).status_code == 200
        assert (await http.get(f"{stack.instance('orders').url}/health")).status_code == 200
        state = json.loads((data_dir / STATE_FILE).read_text())
        assert state["processes"]["postgres"]["restarts"] == 1
        assert state["processes"]["orders-1"]["pid"] == stack.instance("orders").process.pid
        assert state["degraded"] == []
        pids = [p.pid for p in stack.processes()]
    assert not any(alive(pid) for pid in pids)


async def test_a_service_that_keeps_dying_is_reported_as_a_crash_loop_and_heals(
    data_dir: Path, fakes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    config = StackConfig.for_tests(data_dir, extra_env=fakes, restart_policy=QUICK_RESTARTS, start_simulator=False)
    async with Stack(config) as stack:
        orders = stack.instance("orders")
        crash = data_dir / "orders" / "crash"  # the stand-in exits with code 3 at start while this exists
        crash.touch()
        assert orders.process.pid is not None
        with caplog.at_level(logging.WARNING, logger="devstack.supervisor"):
            os.kill(orders.process.pid, signal.SIGKILL)
            await wait_until(lambda: stack.supervisor.status("orders-1").state == "crash-loop", 30, "a crash loop")
            state = json.loads((data_dir / STATE_FILE).read_text())
            assert state["degraded"] == ["orders-1"]
            assert state["processes"]["orders-1"]["state"] == "crash-loop"
            assert "orders-1 is in a crash loop" in caplog.text and "fake crash at start" in caplog.text
            crash.unlink()
            await wait_until(lambda: stack.supervisor.degraded == [], 30, "orders-1 to run again")
        assert stack.instance("orders").process.running


async def test_a_service_dying_at_start_is_reported_with_its_log_and_everything_stops(
    data_dir: Path, fakes: dict[str, str]
) -> None:
    stack = Stack(StackConfig.for_tests(data_dir, extra_env={**fakes, "FAKE_CRASH": "orders"}))
    with pytest.raises(StackError, match=r"(?s)orders-1 exited with code 3.*fake migration failed"):
        await stack.start()
    assert all(not p.running for p in stack.processes())
    assert processes_using(data_dir) == []


async def test_second_launcher_on_the_same_data_and_busy_ports_are_refused(data_dir: Path) -> None:
    config = StackConfig.for_tests(data_dir, services=(), start_simulator=False)
    async with Stack(config):
        with pytest.raises(StackError, match="another dev stack"):
            await Stack(StackConfig.for_tests(data_dir, services=(), start_simulator=False)).start()
        assert (data_dir / STATE_FILE).exists()  # the refused launcher left the running one's state alone

    other = Path(tempfile.mkdtemp(prefix="printfarm-devstack-test-"))
    try:
        busy = StackConfig.for_tests(other, services=(), start_simulator=False)
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", busy.nats_port))
            holder.listen()
            with pytest.raises(StackError, match=rf"nats \({busy.nats_port}\)"):
                await Stack(busy).start()
    finally:
        shutil.rmtree(other, ignore_errors=True)


async def test_external_servers_are_used_instead_of_embedded_ones(infra: Stack, data_dir: Path) -> None:
    assert infra.postgres is not None
    environ = {"NATS_URL": infra.nats_url, "DATABASE_URL": infra.postgres.server_url}
    config = StackConfig.for_tests(data_dir, environ, services=(), start_simulator=False)
    assert config.database_prefix.startswith("printfarm_") and config.drop_databases_on_stop
    names = [config.database_prefix + spec.database for spec in SERVICES]
    async with Stack(config) as stack:
        assert stack.postgres is None and stack.nats is None and list(stack.processes()) == []
        assert stack.nats_url == infra.nats_url
        conn = await asyncpg.connect(asyncpg_dsn(stack.database_urls["orders"]))
        assert await conn.fetchval("SELECT current_database()") == config.database_prefix + "orders"
        await conn.close()
    conn = await asyncpg.connect(asyncpg_dsn(infra.postgres.server_url))
    try:
        left = await conn.fetch("SELECT datname FROM pg_database WHERE datname = any($1::text[])", names)
    finally:
        await conn.close()
    assert left == []


async def test_a_child_ignoring_its_stop_signal_is_killed_after_the_deadline_with_its_children(
    data_dir: Path,
) -> None:
    script = (
        "import signal, subprocess, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('grandchild', subprocess.Popen(['sleep', '120']).pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    process = ManagedProcess("stubborn", [sys.executable, "-c", script], log_path=data_dir / "stubborn.log")
    await process.start()

    async def grandchild() -> int | None:
        words = process.log_tail().split()
        return int(words[1]) if len(words) == 2 else None

    grandchild_pid = await process.wait_ready(grandchild, 30, "the child to start its own child")
    assert await process.stop(0.5) == -signal.SIGKILL
    await wait_until(lambda: not alive(grandchild_pid), 10, "the grandchild to be killed with its group")


def _cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


async def test_cli_up_status_down_and_a_killed_launcher_takes_its_children_along(
    data_dir: Path, fakes: dict[str, str]
) -> None:
    ports = StackConfig.for_tests(data_dir)
    env: dict[str, Any] = {
        **os.environ, **fakes, "DEVSTACK_DATA_DIR": str(data_dir), "PORT": str(ports.api_port),
        "NATS_PORT": str(ports.nats_port), "NATS_MONITOR_PORT": str(ports.nats_monitor_port),
        "SIMULATOR_CONTROL_PORT": str(ports.simulator_control_port),
        **{f"{spec.env_prefix}_PORT": str(ports.service_ports[spec.name]) for spec in SERVICES[:-1]},
    }
    for name in ("NATS_URL", "DATABASE_URL"):
        env.pop(name, None)

    started = await asyncio.to_thread(_cli, ["up"], env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"http://127.0.0.1:{ports.api_port}" in started.stdout
    status = await asyncio.to_thread(_cli, ["status"], env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "api_gateway-1" in status.stdout

    state = json.loads((data_dir / STATE_FILE).read_text())
    crashed = state["processes"]["orders-1"]["pid"]
    os.kill(crashed, signal.SIGKILL)  # the launcher restarts it instead of stopping the farm

    def orders_restarted() -> dict[str, Any] | None:
        now = json.loads((data_dir / STATE_FILE).read_text())
        orders = now["processes"]["orders-1"]
        return now if orders["pid"] != crashed and orders["state"] == "running" and not now["degraded"] else None

    state = await wait_until(orders_restarted, 30, "the launcher to restart orders-1")
    assert state["processes"]["orders-1"]["restarts"] == 1
    status = await asyncio.to_thread(_cli, ["status"], env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "restarted 1x, last: killed by SIGKILL" in status.stdout
    assert "orders-1 killed by SIGKILL" in (data_dir / "logs" / "devstack.log").read_text()

    children = [p["pid"] for p in state["processes"].values()]
    os.kill(state["pid"], signal.SIGKILL)
    await wait_until(lambda: not any(alive(pid) for pid in children), 30, "the orphaned children to exit")

    restarted = await asyncio.to_thread(_cli, ["up"], env)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "registered" not in restarted.stdout  # the printers were kept from the first run
    stopped = await asyncio.to_thread(_cli, ["down"], env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert (await asyncio.to_thread(_cli, ["status"], env)).returncode == 3
    assert processes_using(data_dir) == []
