"""Text PostgreSQL refuses is a 422 naming the field, for every route of an app at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from servicekit.problems import install_problem_handlers
from servicekit.storable_text import StorableText, unstorable_fields, unstorable_reason


class Close(BaseModel):
    order_ids: list[str]
    note: dict[str, str] = {}


def app() -> FastAPI:
    api = FastAPI(dependencies=[StorableText])
    install_problem_handlers(api)
    seen: list[str] = []

    @api.get("/skus/{sku_id}")
    async def get_sku(sku_id: str, q: str | None = None) -> dict[str, str | None]:
        seen.append(sku_id)
        return {"sku_id": sku_id, "q": q}

    @api.post("/orders/close")
    async def close(body: Close) -> dict[str, int]:
        seen.append("close")
        return {"closed": len(body.order_ids)}

    @api.post("/login")
    async def login(username: Annotated[str, Form()]) -> dict[str, str]:
        return {"username": username}

    @api.get("/proxy/{rest:path}")
    async def forward(rest: str) -> dict[str, str]:
        return {"forwarded": rest}

    api.state.seen = seen
    return api


def errors_of(reply: object) -> list[dict[str, str]]:
    body = reply.json()  # type: ignore[attr-defined]
    assert reply.status_code == 422, body  # type: ignore[attr-defined]
    assert reply.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    errors: list[dict[str, str]] = body["errors"]
    return errors


def test_a_nul_in_a_query_or_path_parameter_names_it() -> None:
    api = app()
    with TestClient(api) as client:
        assert [e["field"] for e in errors_of(client.get("/skus/abc", params={"q": "a\x00b"}))] == ["q"]
        assert [e["field"] for e in errors_of(client.get("/skus/a%00b"))] == ["sku_id"]
        assert client.get("/skus/abc", params={"q": "wid\u00e9get \U0001f600"}).status_code == 200
        assert client.get("/proxy/orders/a%00b").status_code == 200, "the owner of a forwarded path names it"
        assert [e["field"] for e in errors_of(client.get("/proxy/orders", params={"q": "\x00"}))] == ["q"]
    assert api.state.seen == ["abc"], "the handler never saw the refused requests"


def test_nuls_and_surrogates_anywhere_in_a_json_body_are_named_by_path() -> None:
    api = app()
    with TestClient(api) as client:
        reply = client.post(
            "/orders/close",
            content=b'{"order_ids": ["ok", "a\\u0000", "\\ud800x"], "note": {"k": "\\u0000"}}',
            headers={"content-type": "application/json"},
        )
        fields = [e["field"] for e in errors_of(reply)]
        assert fields == ["order_ids[1]", "order_ids[2]", "note.k"]
        assert "NUL" in reply.json()["errors"][0]["message"] and "surrogate" in reply.json()["errors"][1]["message"]
        assert client.post("/orders/close", json={"order_ids": ["a", "b"]}).json() == {"closed": 2}
    assert api.state.seen == ["close"]


def test_a_nul_in_a_form_field_names_it() -> None:
    with TestClient(app()) as client:
        assert [e["field"] for e in errors_of(client.post("/login", data={"username": "ad\x00min"}))] == ["username"]
        assert client.post("/login", data={"username": "admin"}).status_code == 200


def test_malformed_json_is_still_the_400_about_the_body() -> None:
    with TestClient(app()) as client:
        reply = client.post("/orders/close", content=b"{", headers={"content-type": "application/json"})
    assert reply.status_code == 400


@given(st.text(st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"]))))
def test_text_that_passes_is_valid_utf8_without_nul(text: str) -> None:
    reason = unstorable_reason(text)
    storable = "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        storable = False
    assert (reason is None) == storable


@given(st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_every_refused_field_is_reported_and_clean_values_pass(value: object) -> None:
    def strings(v: object) -> list[str]:
        if isinstance(v, str):
            return [v]
        if isinstance(v, list):
            return [s for item in v for s in strings(item)]
        if isinstance(v, dict):
            return [s for k, item in v.items() for s in (k, *strings(item))]
        return []

    found = list(unstorable_fields(value))
    assert bool(found) == any(unstorable_reason(s) for s in strings(value))
