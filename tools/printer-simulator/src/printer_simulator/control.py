"""HTTP control API: inspect printers and flip fault switches while the simulator runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from printer_simulator.catalog import parse_materials, parse_printer
from printer_simulator.fleet import Device, Fleet
from printer_simulator.printer import FaultError, SimulatedPrinter

log = logging.getLogger(__name__)

FLEET_KEY = web.AppKey("fleet", Fleet)
ON_CHANGE_KEY: web.AppKey[Callable[[], None]] = web.AppKey("on_change")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problem(status: int, title: str, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _problem(exc.status, exc.reason, exc.text or exc.reason)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc


def _printer(request: web.Request) -> Device:
    serial = request.match_info["serial"]
    try:
        return request.app[FLEET_KEY].get(serial)
    except KeyError as exc:
        raise web.HTTPNotFound(text=f"no printer with serial {serial}") from exc


def _changed(request: web.Request) -> None:
    request.app[ON_CHANGE_KEY]()


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "printers": len(request.app[FLEET_KEY].printers)})


async def list_printers(request: web.Request) -> web.Response:
    return web.json_response({"printers": request.app[FLEET_KEY].summaries()})


async def list_starts(request: web.Request) -> web.Response:
    """Every print the Bambu printers accepted, oldest first per printer: {serial, name, subtask_name, file,
    at, outcome}. (The G-code printers do not keep this record yet.)"""
    fleet = request.app[FLEET_KEY]
    starts = [
        {"serial": p.serial, "name": p.spec.name, **start}
        for p in fleet.printers.values()
        if isinstance(p, SimulatedPrinter)
        for start in p.starts
    ]
    return web.json_response({"starts": starts})


async def get_printer(request: web.Request) -> web.Response:
    return web.json_response(_printer(request).snapshot())


async def get_report(request: web.Request) -> web.Response:
    return web.json_response({"print": _printer(request).full_report()})


async def add_printer(request: web.Request) -> web.Response:
    try:
        spec = parse_printer(await _json_body(request))
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    fleet = request.app[FLEET_KEY]
    if spec.serial in fleet.printers:
        raise web.HTTPConflict(text=f"printer {spec.serial} already exists")
    try:
        printer = await fleet.add_printer(spec)
    except OSError as exc:
        raise web.HTTPConflict(text=f"cannot listen: {exc}") from exc
    _changed(request)
    return web.json_response({**printer.connection_info(), "ca_cert": fleet.ca_pem}, status=201)


async def delete_printer(request: web.Request) -> web.Response:
    printer = _printer(request)
    await request.app[FLEET_KEY].remove_printer(printer.serial)
    _changed(request)
    return web.Response(status=204)


async def post_faults(request: web.Request) -> web.Response:
    printer = _printer(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="faults must be a JSON object")
    try:
        await printer.apply_faults(body)
    except FaultError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except OSError as exc:
        raise web.HTTPConflict(text=f"cannot listen again: {exc}") from exc
    return web.json_response(printer.snapshot())


async def put_materials(request: web.Request) -> web.Response:
    printer = _printer(request)
    try:
        materials = parse_materials(await _json_body(request))
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    printer.set_materials(materials)
    _changed(request)
    return web.json_response(printer.snapshot())


def build_app(fleet: Fleet, on_change: Callable[[], None] | None = None) -> web.Application:
    app = web.Application(middlewares=[_problems])
    app[FLEET_KEY] = fleet
    app[ON_CHANGE_KEY] = on_change or (lambda: None)
    app.router.add_get("/health", health)
    app.router.add_get("/printers", list_printers)
    app.router.add_post("/printers", add_printer)
    app.router.add_get("/starts", list_starts)
    app.router.add_get("/printers/{serial}", get_printer)
    app.router.add_delete("/printers/{serial}", delete_printer)
    app.router.add_get("/printers/{serial}/report", get_report)
    app.router.add_post("/printers/{serial}/faults", post_faults)
    app.router.add_put("/printers/{serial}/materials", put_materials)
    return app


class ControlServer:
    """Runs the control API next to the printers in the same event loop."""

    def __init__(self, fleet: Fleet, on_change: Callable[[], None] | None = None) -> None:
        self._app = build_app(fleet, on_change)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = int(self._runner.addresses[0][1])
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
