"""How far apart two filament colours look: CIEDE2000 ΔE between sRGB hex colours.

A job asks for "red PLA"; the spool loaded may be a slightly different red from another brand. The
farm's colour tolerance (ΔE00, 0 = exact) says how far a spool's colour may be from the job's and
still match. CIEDE2000 (CIE 142-2001) is the difference metric that tracks how far apart colours
look: about 1 is a just-noticeable difference, 2-3 a difference seen side by side, 10 and more two
different colours. The formula follows Sharma, Wu and Dalal (2005), whose test pairs the tests use.
"""

from __future__ import annotations

import functools
import math

from contracts.colours import canonical_color

Lab = tuple[float, float, float]

_WHITE_D65 = (0.95047, 1.0, 1.08883)
"""The sRGB white point (D65, 2° observer) that CIELAB is taken relative to."""
_EPSILON = (6 / 29) ** 3
_POW25_7 = 25.0**7


def _linear(channel: int) -> float:
    """An 8-bit sRGB channel → linear light in [0, 1] (the sRGB transfer function undone)."""
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _f(t: float) -> float:
    return t ** (1 / 3) if t > _EPSILON else t / (3 * (6 / 29) ** 2) + 4 / 29


@functools.lru_cache(maxsize=4096)
def lab_of(color: str) -> Lab | None:
    """A hex colour (any spelling `canonical_color` reads) → CIELAB (D65); None if it is no colour."""
    canonical = canonical_color(color)
    if canonical is None:
        return None
    r, g, b = (_linear(int(canonical[i : i + 2], 16)) for i in (1, 3, 5))
    x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b
    fx, fy, fz = _f(x / _WHITE_D65[0]), _f(y / _WHITE_D65[1]), _f(z / _WHITE_D65[2])
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def _hue(b: float, a: float) -> float:
    """Hue angle in degrees [0, 360); 0 for a neutral colour (a = b = 0)."""
    if a == 0 and b == 0:
        return 0.0
    return math.degrees(math.atan2(b, a)) % 360.0


def delta_e_2000(lab1: Lab, lab2: Lab) -> float:
    """CIEDE2000 colour difference between two CIELAB colours (kL = kC = kH = 1)."""
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    c7 = c_mean**7
    g = 0.5 * (1 - math.sqrt(c7 / (c7 + _POW25_7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = _hue(b1, a1p), _hue(b2, a2p)

    dl = l2 - l1
    dc = c2p - c1p
    chroma_product = c1p * c2p
    if chroma_product == 0:
        dh = 0.0
    else:
        dh = h2p - h1p
        if dh > 180:
            dh -= 360
        elif dh < -180:
            dh += 360
    dH = 2 * math.sqrt(chroma_product) * math.sin(math.radians(dh / 2))

    l_mean = (l1 + l2) / 2
    cp_mean = (c1p + c2p) / 2
    if chroma_product == 0:
        h_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_mean = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        h_mean = (h1p + h2p + 360) / 2
    else:
        h_mean = (h1p + h2p - 360) / 2

    t = (
        1
        - 0.17 * math.cos(math.radians(h_mean - 30))
        + 0.24 * math.cos(math.radians(2 * h_mean))
        + 0.32 * math.cos(math.radians(3 * h_mean + 6))
        - 0.20 * math.cos(math.radians(4 * h_mean - 63))
    )
    d_theta = 30 * math.exp(-(((h_mean - 275) / 25) ** 2))
    cp7 = cp_mean**7
    r_c = 2 * math.sqrt(cp7 / (cp7 + _POW25_7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -math.sin(math.radians(2 * d_theta)) * r_c
    lt, ct, ht = dl / s_l, dc / s_c, dH / s_h
    return math.sqrt(max(lt * lt + ct * ct + ht * ht + r_t * ct * ht, 0.0))


def color_distance(wanted: str | None, loaded: str | None) -> float | None:
    """ΔE00 between a job's colour and a spool's, rounded to 0.01; None when either is no hex colour
    (a job without a colour takes any; a named colour only matches the same name)."""
    lab1 = lab_of(wanted) if wanted else None
    lab2 = lab_of(loaded) if loaded else None
    if lab1 is None or lab2 is None:
        return None
    return round(delta_e_2000(lab1, lab2), 2)


@functools.lru_cache(maxsize=65536)
def colors_match(wanted: str | None, loaded: str | None, tolerance: float) -> bool:
    """Whether a spool of colour `loaded` serves a job that wants `wanted`: any colour when the job names
    none; else the same canonical colour, or within `tolerance` ΔE00 when both are hex colours. Cached: a
    matching pass asks about the same few (job colour, spool colour) pairs for every printer."""
    if wanted is None:
        return True
    if loaded is None:
        return False
    same_wanted, same_loaded = canonical_color(wanted), canonical_color(loaded)
    if same_wanted is None or same_loaded is None:
        return wanted.strip().upper() == loaded.strip().upper()
    if same_wanted == same_loaded:
        return True
    if tolerance <= 0:
        return False
    distance = color_distance(same_wanted, same_loaded)
    return distance is not None and distance <= tolerance
