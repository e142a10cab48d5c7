"""Mesh part files (unsliced), built in the test (no binary fixtures)."""

from __future__ import annotations

import struct


def stl_cube(size: float = 10.0) -> bytes:
    """A binary STL of a cube: 12 outward-wound triangles with their unit normals (PrusaSlicer 2.5 refuses
    to load a binary STL whose normals are all zero)."""
    s = size
    corners = [(x, y, z) for x in (0.0, s) for y in (0.0, s) for z in (0.0, s)]
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),
             (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]

    def normal(face: tuple[int, int, int]) -> tuple[float, float, float]:
        a, b, c = (corners[i] for i in face)
        u = (b[0] - a[0], b[1] - a[1], b[2] - a[2])
        v = (c[0] - a[0], c[1] - a[1], c[2] - a[2])
        n = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
        length = sum(x * x for x in n) ** 0.5
        return (n[0] / length, n[1] / length, n[2] / length)

    body = b"".join(
        struct.pack("<3f", *normal(face)) + b"".join(struct.pack("<3f", *corners[i]) for i in face) + b"\0\0"
        for face in faces
    )
    return b"printfarm test cube".ljust(80, b" ") + struct.pack("<I", len(faces)) + body
