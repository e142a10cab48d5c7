from pathlib import Path

import pytest

from devstack import StackError
from devstack.postgres import (
    asyncpg_dsn,
    check_database_name,
    database_url,
    redact,
    socket_dir_for,
    sqlalchemy_url,
)


def test_database_url_over_a_unix_socket_has_the_documented_form() -> None:
    server = "postgresql://postgres@/postgres?host=/srv/printfarm/.data/pg/run"
    assert database_url(server, "orders") == "postgresql+asyncpg://postgres@/orders?host=/srv/printfarm/.data/pg/run"


def test_database_url_on_a_tcp_server_keeps_credentials_and_options() -> None:
    server = "postgresql+asyncpg://app:s3cret@127.0.0.1:5432/postgres?ssl=disable"
    assert database_url(server, "printfarm_ab12_orders") == (
        "postgresql+asyncpg://app:s3cret@127.0.0.1:5432/printfarm_ab12_orders?ssl=disable"
    )


def test_driver_suffix_is_added_for_services_and_dropped_for_asyncpg() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert sqlalchemy_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert asyncpg_dsn("postgresql+asyncpg://u@/db?host=/s") == "postgresql://u@/db?host=/s"


def test_redact_hides_passwords_only() -> None:
    assert redact("postgresql+asyncpg://app:s3cret@db:5432/x") == "postgresql+asyncpg://app:***@db:5432/x"
    assert redact("postgresql+asyncpg://postgres@/x?host=/s") == "postgresql+asyncpg://postgres@/x?host=/s"


def test_socket_folder_moves_to_tmp_when_the_data_path_is_too_long_for_a_socket() -> None:
    short = Path("/srv/printfarm/.data/pg")
    deep = Path("/tmp") / ("d" * 120) / "pg"
    assert socket_dir_for(short) == short / "run"
    fallback = socket_dir_for(deep)
    assert fallback != deep / "run" and len(str(fallback)) < 60
    assert socket_dir_for(deep) == fallback  # stable, so clients find it again after a restart


@pytest.mark.parametrize("name", ["Orders", "or-ders", 'x"; DROP DATABASE y; --', "", "1abc"])
def test_database_names_that_would_need_quoting_are_refused(name: str) -> None:
    with pytest.raises(StackError):
        check_database_name(name)


def test_prefixed_database_names_are_accepted() -> None:
    assert check_database_name("printfarm_ab12cd34_printer_gateway") == "printfarm_ab12cd34_printer_gateway"
