import json
from typing import Any

import httpx
import pytest

from devstack import SimulatorInfo, StackError
from devstack.registration import register_printers

FLEET: dict[str, Any] = {
    "ca_cert": "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n",
    "control_url": "http://127.0.0.1:18085",
    "printers": [
        {"name": f"p{i}", "serial": f"SN{i}", "model": "X1C", "host": "127.0.0.1", "port": 30000 + i,
         "ftp_port": 31000 + i, "access_code": f"code{i}", "tags": ["t"], "fabmatic": False,
         "materials": [{"slot": 0, "type": "PLA"}]}
        for i in range(1, 5)
    ],
}


class FakeGateway:
    """Lists printers one per page; answers POSTs from a table keyed by serial."""

    def __init__(self, known: list[str], answers: dict[str, int] | None = None) -> None:
        self.known = known
        self.answers = answers or {}
        self.posted: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.params["limit"] == "500"
            start = int(request.url.params.get("cursor", 0))
            items = [{"id": s, "serial": s} for s in self.known[start:start + 1]]
            more = start + 1 < len(self.known)
            return httpx.Response(200, json={"items": items, "next_cursor": str(start + 1) if more else None})
        body = json.loads(request.content)
        self.posted.append(body)
        status = self.answers.get(body["serial"], 201)
        return httpx.Response(status, json={"title": "answer", "status": status})


def client(gateway: FakeGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(gateway), base_url="http://gw")


async def test_only_printers_missing_from_every_page_are_posted_with_the_full_body() -> None:
    gateway = FakeGateway(known=["SN1", "SN3"])
    async with client(gateway) as http:
        report = await register_printers(http, SimulatorInfo.from_json(FLEET))
    assert report.created == ("p2", "p4")
    assert report.already_registered == ("p1", "p3")
    assert [b["serial"] for b in gateway.posted] == ["SN2", "SN4"]
    assert gateway.posted[0] == {
        "name": "p2", "model": "X1C", "protocol": "bambu_lan", "host": "127.0.0.1", "port": 30002,
        "ftp_port": 31002, "serial": "SN2", "access_code": "code2", "ca_cert": FLEET["ca_cert"],
        "tags": ["t"], "fabmatic": False,
    }


async def test_a_conflict_counts_as_already_registered() -> None:
    async with client(FakeGateway(known=[], answers={"SN2": 409})) as http:
        report = await register_printers(http, SimulatorInfo.from_json(FLEET))
    assert report.already_registered == ("p2",)
    assert len(report.created) == 3


async def test_a_refusal_fails_loudly_without_repeating_the_access_code() -> None:
    async with client(FakeGateway(known=[], answers={"SN1": 422})) as http:
        with pytest.raises(StackError, match="registering printer p1 \\(SN1\\) answered 422") as failure:
            await register_printers(http, SimulatorInfo.from_json(FLEET))
    assert "code1" not in str(failure.value)


def test_fleet_info_never_shows_access_codes_in_its_repr() -> None:
    info = SimulatorInfo.from_json(FLEET)
    assert info.printer("SN3").name == "p3"
    assert "code" not in repr(info)
    assert info.printers[0].materials == ({"slot": 0, "type": "PLA"},)
