"""What watching X1/H2 cameras costs the printer gateway: RTSPS from simulated X1Cs, decoded by ffmpeg.

For N cameras watched at once (each by one viewer asking for a picture every `--every` seconds, as the
web UI does every second) this prints the time to the first picture, the pictures handed out per second,
and the CPU the ffmpeg processes and this process (TLS, RTSP, RTP) used per second of watching. The
simulator's clip is 640x360 at 5 frames per second; a real X1C streams more pixels and frames, so read
the ffmpeg figure as a lower bound per stream.

    .venv/bin/python bench/bench_camera.py [--cameras 1 4] [--seconds 10] [--every 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from printer_gateway.adapters.bambu.rtsps_camera import RtspsCamera
from printer_gateway.adapters.bambu.tls import create_ssl_context
from printer_gateway.adapters.video import FfmpegDecoders
from printer_simulator.catalog import parse_printer
from printer_simulator.fleet import Fleet

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(cameras: int, seconds: float, every: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        fleet = Fleet(Path(folder) / "sim", report_interval=1.0)
        decoders = FfmpegDecoders(cameras)
        views: list[RtspsCamera] = []
        for n in range(cameras):
            serial = f"00M09A3501{n:05d}"
            printer = await fleet.add_printer(
                parse_printer({"name": f"x1c-{n}", "serial": serial, "model": "X1C", "access_code": "12345678"})
            )
            context = create_ssl_context(fleet.ca_pem, serial)
            views.append(RtspsCamera(printer.host, printer.camera_port, "12345678", context, decoders))
        try:
            started = time.perf_counter()
            firsts = await asyncio.gather(*(view.snapshot(timeout=30) for view in views))
            first_seconds = time.perf_counter() - started
            assert all(firsts)
            pids = [decoder.process.pid for decoder in decoders.running]
            ffmpeg_before = sum(process_cpu_seconds(pid) for pid in pids)
            own_before = own_cpu_seconds()
            pictures: list[bytes] = []

            async def watch(view: RtspsCamera) -> None:
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    pictures.append(await view.snapshot(timeout=30))
                    await asyncio.sleep(every)

            watch_started = time.perf_counter()
            await asyncio.gather(*(watch(view) for view in views))
            elapsed = time.perf_counter() - watch_started
            ffmpeg_cpu = sum(process_cpu_seconds(pid) for pid in pids) - ffmpeg_before
            own_cpu = own_cpu_seconds() - own_before
            sizes = statistics.median(len(p) for p in pictures) / 1024
            print(
                f"cameras={cameras}: first picture of all {first_seconds:.2f} s; "
                f"{len(pictures) / elapsed:.1f} pictures/s handed out (median {sizes:.1f} KiB); "
                f"ffmpeg CPU {ffmpeg_cpu / elapsed * 100 / cameras:.1f}% of a core per stream, "
                f"gateway process (incl. simulator) {own_cpu / elapsed * 100:.1f}%"
            )
        finally:
            for view in views:
                await view.close()
            await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=1.0)
    args = parser.parse_args()
    for cameras in args.cameras:
        asyncio.run(run(cameras, args.seconds, args.every))


if __name__ == "__main__":
    main()
