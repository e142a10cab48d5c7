import io
from pathlib import Path
from typing import Any

from devstack.cli import LogEcho, build_parser, config_from, describe


def test_options_override_the_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["run", "--data-dir", str(tmp_path), "--port", "9090", "--service-port", "printer-gateway=19004",
         "--services", "orders, skus", "--no-simulator", "--time-scale", "60"]
    )
    config = config_from(args, {"ORDERS_PORT": "19002", "PORT": "8081"})
    assert config.data_dir == tmp_path
    assert config.api_port == 9090
    assert config.service_ports["printer_gateway"] == 19004
    assert config.service_ports["orders"] == 19002
    assert config.services == ("orders", "skus")
    assert not config.start_simulator and not config.register_printers
    assert config.simulator_time_scale == 60


STATE: dict[str, Any] = {
    "status": "ready", "pid": 1, "data_dir": "/d", "log_dir": "/d/logs", "api_url": "http://127.0.0.1:8080",
    "docs_url": "http://127.0.0.1:8080/docs", "api_token_file": "/d/api_token", "nats_url": "nats://127.0.0.1:14222",
    "nats_monitor_url": "http://127.0.0.1:18222", "postgres_socket_dir": "/d/pg/run",
    "database_urls": {"orders": "postgresql+asyncpg://postgres@/orders?host=/d/pg/run"},
    "simulator": {"control_url": "http://127.0.0.1:18085", "printers": ["x1c-01"]},
    "registered": ["x1c-01"],
    "processes": {
        "orders-1": {"pid": 5, "url": "http://127.0.0.1:18082", "log": "x"},
        "api_gateway-1": {"pid": 6, "url": "http://127.0.0.1:8080", "log": "y"},
    },
}


def test_summary_says_where_everything_is() -> None:
    text = describe(STATE)
    for expected in ["http://127.0.0.1:8080/docs", "$(cat /d/api_token)", "nats://127.0.0.1:14222", "/d/pg/run",
                     "orders-1", "http://127.0.0.1:18082", "http://127.0.0.1:18085", "x1c-01", "/d/logs"]:
        assert expected in text


def test_summary_without_a_gateway_shows_no_api() -> None:
    text = describe({**STATE, "processes": {"orders-1": STATE["processes"]["orders-1"]}})
    assert "docs" not in text and "API token" not in text


def test_log_echo_prefixes_complete_lines_and_keeps_partial_ones(tmp_path: Path) -> None:
    out = io.StringIO()
    echo = LogEcho(tmp_path, out)
    (tmp_path / "orders-1.log").write_bytes(b"first\nsecond half")
    (tmp_path / "postgres.log").write_bytes(b"not echoed\n")
    echo.echo_new_lines()
    with (tmp_path / "orders-1.log").open("ab") as log:
        log.write(b" done\n")
    echo.echo_new_lines()
    lines = out.getvalue().splitlines()
    assert [line.split("| ", 1)[1] for line in lines] == ["first", "second half done"]
    assert all(line.strip().startswith("orders-1 |") for line in lines)


def test_log_echo_starts_over_when_a_log_was_recreated(tmp_path: Path) -> None:
    out = io.StringIO()
    echo = LogEcho(tmp_path, out)
    (tmp_path / "skus-1.log").write_bytes(b"old run line\n")
    echo.echo_new_lines()
    (tmp_path / "skus-1.log").write_bytes(b"new\n")
    echo.echo_new_lines()
    assert out.getvalue().splitlines()[-1].endswith("| new")
