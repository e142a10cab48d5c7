"""Parse times of the skus file readers on generated worst-case-ish inputs.

Run: .venv/bin/python bench/bench_skus_parsers.py [--runs 5]
Prints the median of several runs for a 50 MB binary STL and a 2,000-line OpenSCAD file, and the
peak Python memory of one STL parse (it must stay far below the file size: the reader streams).
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import tempfile
import time
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path

from skus.adapters.file_inspection import inspect_local_file

STL_TRIANGLES = 1_000_000  # 84 + 50 * n bytes = 50.0 MB
SCAD_PARAMETERS = 400  # five lines each
BLOCK_TRIANGLES = 1000


def write_binary_stl(path: Path, triangles: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    block = bytearray()
    for _ in range(BLOCK_TRIANGLES):
        floats = array("f", [0.0, 0.0, 1.0] + [rng.uniform(-150.0, 150.0) for _ in range(9)])
        block += floats.tobytes() + b"\x00\x00"
    with path.open("wb") as out:
        out.write(b"solid bench (binary despite the header)".ljust(80, b" "))
        out.write(struct.pack("<I", triangles))
        full, rest = divmod(triangles, BLOCK_TRIANGLES)
        for _ in range(full):
            out.write(block)
        out.write(block[: rest * 50])


def write_scad(path: Path, parameters: int) -> None:
    lines: list[str] = []
    for i in range(parameters):
        if i % 40 == 0:
            lines.append(f"/* [Group {i // 40}] */")
        else:
            lines.append(f"derived_{i} = p_{i - 1} * 2 + sin({i});")
        lines.append(f"// Description of parameter {i}, with // slashes and [brackets]")
        kind = i % 5
        if kind == 0:
            lines.append(f"p_{i} = {i}; // [0:{i + 10}]")
        elif kind == 1:
            lines.append(f"p_{i} = {i}.5; // [0:0.5:{i + 100}]")
        elif kind == 2:
            lines.append(f'p_{i} = "b"; // [a:Option A, b:Option B, c:Option C]')
        elif kind == 3:
            lines.append(f"p_{i} = 2; // [1:Fast, 2:Standard, 3:Fine]")
        else:
            lines.append(f"p_{i} = true;")
        lines.append("cube([1, 2, 3]); /* a block comment */")
        lines.append("")
    lines += ["module body() {", "    cube(p_0);", "}"]
    path.write_text("\n".join(lines) + "\n")


def median_seconds(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds; CPU time is the steadier figure on a shared machine."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-skus-") as tmp:
        stl = Path(tmp) / "big.stl"
        scad = Path(tmp) / "big.scad"
        write_binary_stl(stl, STL_TRIANGLES)
        write_scad(scad, SCAD_PARAMETERS)

        stl_info = inspect_local_file(stl, "big.stl")
        scad_info = inspect_local_file(scad, "big.scad")
        assert stl_info.triangle_count == STL_TRIANGLES
        assert len(scad_info.parameters) == SCAD_PARAMETERS

        stl_mb = stl.stat().st_size / 1e6
        stl_s = median_seconds(lambda: inspect_local_file(stl, "big.stl"), args.runs)
        scad_lines = scad.read_text().count("\n")
        scad_s = median_seconds(lambda: inspect_local_file(scad, "big.scad"), args.runs)

        tracemalloc.start()
        inspect_local_file(stl, "big.stl")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(
        f"binary STL  {stl_mb:.1f} MB, {STL_TRIANGLES:,} triangles: median {stl_s[0] * 1000:.0f} ms wall, "
        f"{stl_s[1] * 1000:.0f} ms CPU ({stl_mb / stl_s[1]:.0f} MB/s CPU) over {args.runs} runs; "
        f"peak Python memory {peak / 1e6:.1f} MB"
    )
    print(
        f"OpenSCAD    {scad_lines:,} lines, {SCAD_PARAMETERS} parameters: median {scad_s[0] * 1000:.1f} ms wall, "
        f"{scad_s[1] * 1000:.1f} ms CPU over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
