"""A stored printer access code is never sent to a new address: moving a printer (host, ports, serial)
or changing the CA its certificate must chain to needs the access code again in the same request.
Otherwise anyone allowed to edit printers could point one at their own broker and collect the code
when the gateway logs in. Through the API gateway on the real stack."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.integration

CODE = "12345678"


def attacker_ca() -> str:
    """A self-signed CA the attacker's broker would present."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def registered_printer(api: httpx.AsyncClient) -> dict[str, Any]:
    """A printer nobody answers for (nothing listens on its port), so only the API is exercised."""
    serial = f"SEC{uuid.uuid4().hex[:10].upper()}"
    reply = await api.post(
        "/api/v1/printers",
        json={
            "name": f"sec {serial}",
            "model": "X1C",
            "protocol": "bambu_lan",
            "host": "127.0.0.1",
            "port": 1,
            "ftp_port": 2,
            "serial": serial,
            "access_code": CODE,
        },
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def problem_fields(reply: httpx.Response) -> list[str]:
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.text
    return [e["field"] for e in reply.json().get("errors", [])]


@pytest.mark.parametrize(
    "change",
    [
        {"host": "203.0.113.66", "ca_cert": "attacker"},
        {"host": "203.0.113.66"},
        {"port": 18883},
        {"ftp_port": 1990},
        {"serial": "ATTACKER0001"},
        {"ca_cert": "attacker"},
        {"ca_cert": None},
    ],
    ids=["host+ca", "host", "port", "ftp_port", "serial", "ca_cert", "ca_cert-reset"],
)
async def test_moving_a_printer_without_its_access_code_is_refused(
    api: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    printer = await registered_printer(api)
    if change.get("ca_cert") == "attacker":
        change = {**change, "ca_cert": attacker_ca()}
    if "ca_cert" in change and change["ca_cert"] is None:
        # reset-to-default only differs from the stored value when a CA was set; set one with the code first
        set_ca = await api.patch(
            f"/api/v1/printers/{printer['id']}", json={"ca_cert": attacker_ca(), "access_code": CODE}
        )
        assert set_ca.status_code == 200, set_ca.text

    reply = await api.patch(f"/api/v1/printers/{printer['id']}", json=change)

    assert reply.status_code == 422, reply.text
    assert problem_fields(reply) == ["access_code"]
    assert "required" in reply.json()["errors"][0]["message"]
    after = (await api.get(f"/api/v1/printers/{printer['id']}")).json()
    for name in ("host", "port", "ftp_port", "serial"):
        assert after[name] == printer[name], f"{name} changed by a refused request"


async def test_moving_a_printer_with_its_access_code_is_accepted(api: httpx.AsyncClient) -> None:
    printer = await registered_printer(api)

    reply = await api.patch(
        f"/api/v1/printers/{printer['id']}",
        json={"host": "127.0.0.2", "port": 18883, "ca_cert": attacker_ca(), "access_code": CODE},
    )

    assert reply.status_code == 200, reply.text
    assert reply.json()["host"] == "127.0.0.2" and reply.json()["port"] == 18883
    assert CODE not in reply.text and "access_code" not in reply.text


async def test_edits_that_do_not_move_the_printer_need_no_access_code(api: httpx.AsyncClient) -> None:
    printer = await registered_printer(api)

    reply = await api.patch(
        f"/api/v1/printers/{printer['id']}",
        json={"name": f"renamed {printer['serial']}", "tags": ["left-wall"], "host": printer["host"], "port": 1},
    )

    assert reply.status_code == 200, reply.text
    assert reply.json()["tags"] == ["left-wall"]
