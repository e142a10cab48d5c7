from pathlib import Path

import pytest

from devstack import SERVICES, StackConfig, StackError
from devstack.config import default_ports
from devstack.ports import ephemeral_ports

SYSTEM_PORTS = {4222, 5432, 1883, 8883}


def test_default_ports_are_distinct_and_clear_of_the_system_servers() -> None:
    config = StackConfig.from_env({})
    ports = list(config.ports_to_bind().values())
    assert config.api_port == 8080
    assert len(ports) == len(set(ports)) == len(SERVICES) + 3
    assert not SYSTEM_PORTS & set(ports)
    assert config.data_dir == Path(".data").absolute()


def test_environment_sets_ports_and_external_servers() -> None:
    config = StackConfig.from_env(
        {
            "PORT": "9000",
            "ORDERS_PORT": "19002",
            "NATS_URL": "nats://10.0.0.5:4222",
            "DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/postgres",
            "SKUS_DATABASE_URL": "postgresql+asyncpg://app@db/skus_only",
            "DEVSTACK_DATA_DIR": "/srv/stack",
        }
    )
    assert config.api_port == 9000
    assert config.service_ports["orders"] == 19002
    assert config.nats_url == "nats://10.0.0.5:4222"
    assert config.database_server_url == "postgresql://app:pw@127.0.0.1:5432/postgres"
    assert config.database_prefix == "printfarm_"
    assert config.database_urls == {"skus": "postgresql+asyncpg://app@db/skus_only"}
    assert config.data_dir == Path("/srv/stack")
    assert "nats" not in config.ports_to_bind()


def test_a_bad_port_names_its_variable() -> None:
    with pytest.raises(StackError, match="NATS_PORT='x'"):
        StackConfig.from_env({"NATS_PORT": "x"})
    with pytest.raises(StackError, match="PORT=70000"):
        StackConfig.from_env({"PORT": "70000"})


def test_for_tests_uses_free_ports_and_isolates_databases_on_an_external_server(tmp_path: Path) -> None:
    config = StackConfig.for_tests(tmp_path, {"DATABASE_URL": "postgresql://u@h/postgres", "PORT": "8080"})
    other = StackConfig.for_tests(tmp_path, {"DATABASE_URL": "postgresql://u@h/postgres"})
    ports = list(config.ports_to_bind().values())
    assert len(ports) == len(set(ports))
    assert not set(ports) & default_ports()
    assert not set(ports) & set(ephemeral_ports())  # outgoing connections cannot take them meanwhile
    assert config.database_prefix.startswith("printfarm_") and config.database_prefix != other.database_prefix
    assert config.drop_databases_on_stop and not config.postgres_fsync


def test_for_tests_rejects_unknown_overrides(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        StackConfig.for_tests(tmp_path, no_such_field=1)


def test_service_names_are_normalised_and_registration_needs_gateway_and_simulator(tmp_path: Path) -> None:
    config = StackConfig(tmp_path, services=("printqueue", "printer-gateway"))
    assert config.services == ("queue", "printer_gateway")
    assert not config.register_printers
    assert StackConfig(tmp_path).register_printers
    with pytest.raises(StackError, match="unknown service 'billing'"):
        StackConfig(tmp_path, services=("billing",))
