"""A corpus of hostile part uploads, sent through the API gateway to the real skus service: each is
refused with a 4xx problem detail naming `file`, within a bounded time, and without the service's
peak memory growing with what the upload claims to hold. Nothing of a refused upload is stored."""

from __future__ import annotations

import io
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the service's peak memory"),
]

SECONDS = 15.0
"""Generous: every case is decided from declared sizes, a DTD or a depth long before this."""
MEMORY_GROWTH = 128 << 20
"""Generous: the bombs below claim hundreds of megabytes to gigabytes once expanded."""
PLATE_GCODE = b"; total estimated time: 30m 0s\n; total filament weight [g] : 12.5\nG28\nG1 X10 Y10 E1\n"


def zipped(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_bomb() -> bytes:
    """A plate G-code of 256 MiB of zeros, deflated about 1000:1."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("Metadata/plate_1.gcode", "w", force_zip64=True) as member:
            member.write(PLATE_GCODE)
            block = b"\0" * (1 << 20)
            for _ in range(256):
                member.write(block)
    return out.getvalue()


def many_members() -> bytes:
    members = {"Metadata/plate_1.gcode": PLATE_GCODE}
    members.update({f"Metadata/junk_{n}.txt": b"" for n in range(20_000)})
    return zipped(members, compression=zipfile.ZIP_STORED)


def with_config(config: bytes) -> bytes:
    """Stored, not deflated: the XML itself must be refused, not its compression ratio."""
    members = {"Metadata/plate_1.gcode": PLATE_GCODE, "Metadata/slice_info.config": config}
    return zipped(members, compression=zipfile.ZIP_STORED)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n' for n in range(1, 10))
    + "]>\n<config><plate>&lol9;</plate></config>\n"
)
DEEP_XML = b"<config>" + b"<plate>" * 100_000 + b"</plate>" * 100_000 + b"</config>"
EXTERNAL_ENTITY = b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><config>&x;</config>'
HUGE_LINE = b";" + b" " * (2 << 20)

CORPUS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zip bomb": ("bomb.gcode.3mf", zip_bomb, "expands"),
    "20,000 members": ("many.gcode.3mf", many_members, "members"),
    "billion laughs": ("laughs.gcode.3mf", lambda: with_config(BILLION_LAUGHS.encode()), "DTD"),
    "billion laughs in UTF-16": ("laughs16.gcode.3mf", lambda: with_config(BILLION_LAUGHS.encode("utf-16")), "DTD"),
    "external entity": ("xxe.gcode.3mf", lambda: with_config(EXTERNAL_ENTITY), "DTD"),
    "XML 100,000 levels deep": ("deep.gcode.3mf", lambda: with_config(DEEP_XML), "deeper"),
    "huge G-code comment line, no G-code": ("line.gcode", lambda: HUGE_LINE, "not G-code"),
    "huge .scad group comment only": ("line.scad", lambda: b"/* [" + b" " * (2 << 20) + b"*/\n", "OpenSCAD"),
    "huge ASCII STL line": ("line.stl", lambda: b"solid x\n" + b"1" * (2 << 20) + b"\nendsolid x\n", "STL"),
    "include </etc/passwd>": ("passwd.scad", lambda: b"include </etc/passwd>\nx = 1;\ncube(x);\n", "include"),
    "use <../../../etc/shadow>": ("shadow.scad", lambda: b"use <../../../etc/shadow>\ncube(1);\n", "use"),
    "import of /etc/passwd": ("imp.scad", lambda: b'x = 1;\nmodule m() { import("/etc/passwd"); }\nm();\n', "import"),
}


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize(("filename", "build", "says"), CORPUS.values(), ids=CORPUS.keys())
async def test_a_hostile_upload_is_refused_quickly_and_cheaply(
    stack: Stack, api: httpx.AsyncClient, filename: str, build: Callable[[], bytes], says: str
) -> None:
    pid = stack.instance("skus").process.pid
    assert pid is not None
    content = build()
    name = f"hostile {uuid.uuid4().hex[:8]}"
    before = peak_rss(pid)

    started = time.monotonic()
    reply = await api.post(
        "/api/v1/parts",
        data={"name": name, "material_type": "PLA"},
        files={"file": (filename, content)},
        timeout=120,
    )
    elapsed = time.monotonic() - started

    assert reply.status_code in (413, 422), reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert [e["field"] for e in problem["errors"]] == ["file"]
    assert says in problem["detail"], problem["detail"]
    assert "root:" not in reply.text, "file contents leaked into the answer"
    assert elapsed < SECONDS, f"answered in {elapsed:.1f} s"
    assert peak_rss(pid) - before < MEMORY_GROWTH, f"peak memory grew by {(peak_rss(pid) - before) >> 20} MiB"
    parts = await api.get("/api/v1/parts", params={"q": name})
    assert parts.status_code == 200 and [p for p in parts.json()["items"] if p["name"] == name] == []


async def test_library_includes_stay_allowed(api: httpx.AsyncClient) -> None:
    """A library path (OpenSCAD's own folders) is not file access outside them: no refusal for that."""
    reply = await api.post(
        "/api/v1/parts",
        data={"name": f"lib {uuid.uuid4().hex[:8]}", "material_type": "PLA"},
        files={"file": ("lib.scad", b"use <MCAD/units.scad>\nsize = 10; // [5:20]\ncube(size);\n")},
    )

    assert "leaves the OpenSCAD library folders" not in reply.text
