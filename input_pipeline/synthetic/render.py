"""Anti-aliased rendering of textured discs / boxes over a textured room, with exact optical flow.

Image coordinates: x right, y down, in pixels; pixel (row i, col j) covers [j, j+1] x [i, i+1], so its
centre is (j + 0.5, i + 0.5). The camera sees the world shifted by the pan: ``image = world - pan[k]``.

Coverage is analytic: a box's coverage of a pixel is the exact area of overlap (separable); a disc's is
``clip(r - d + 0.5, 0, 1)`` with d the distance from the pixel centre to the disc centre (1-px ramp).
Textures are smooth (sinusoids, linear ramps, C1 value noise) with periods of several pixels so that
brightness is constant along the flow and bilinear warping reproduces frames closely.

Flow at a pixel is that of the top-most surface whose interior contains the pixel centre (box: strictly
inside; disc: d < r, i.e. coverage > 1/2), in layer order background < distractors < objects. A surface
point with local coordinates l (in the shape's rotating frame) is at ``c + R(angle) l``, so the flow from
frame k to k+1 is ``c[k+1] + R(angle[k+1] - angle[k]) (p - c[k]) - p`` exactly.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math

import numpy as np

__all__ = [
    "Look",
    "Shape",
    "Background",
    "sample_look",
    "sample_background",
    "render_background",
    "render_shapes",
    "luminance",
]

OBJECT_TEXTURES = ("solid", "stripes", "checker", "gradient")
BACKGROUND_TEXTURES = ("gradient", "checker", "noise")


@dataclasses.dataclass
class Look:
    """Surface appearance: colours in [0, 1] RGB, texture period in px, direction/phase in radians."""

    texture: str
    colour: np.ndarray
    colour2: np.ndarray
    period: float
    direction: float
    phase: float

    def to_json(self) -> dict:
        return dict(
            texture=self.texture,
            colour=[int(round(255 * c)) for c in self.colour],
            colour2=[int(round(255 * c)) for c in self.colour2],
            period_px=round(float(self.period), 3),
        )


@dataclasses.dataclass
class Shape:
    """A drawn disc or box: half extents px, ``centre`` [N, 2] world px, ``angle`` [N] rad (clockwise)."""

    name: str
    kind: str
    hx: float
    hy: float
    centre: np.ndarray
    angle: np.ndarray
    look: Look


@dataclasses.dataclass
class Background:
    """The room: a textured interior ``room = (x0, y0, x1, y1)`` (world px) inside textured wall strips."""

    interior: Look
    wall: Look
    room: tuple[float, float, float, float]
    noise: np.ndarray | None = None  # value-noise control grid [gh, gw] in [0, 1]
    cell: float = 1.0  # value-noise cell size, px


def luminance(rgb) -> float:
    r, g, b = rgb
    return float(0.299 * r + 0.587 * g + 0.114 * b)


def _hsv(h, s, v) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def sample_look(rng: np.random.Generator, u: float, size: float, avoid_lum: float | None = None) -> Look:
    """A saturated object colour (luminance at least 0.15 from ``avoid_lum`` when given) and a texture
    whose period is a fraction of the object size (but >= 0.07 u so bilinear warping stays accurate)."""
    for _ in range(20):
        h, s, v = rng.uniform(0, 1), rng.uniform(0.45, 1.0), rng.uniform(0.35, 1.0)
        colour = _hsv(h, s, v)
        if avoid_lum is None or abs(luminance(colour) - avoid_lum) >= 0.15:
            break
    texture = OBJECT_TEXTURES[int(rng.integers(len(OBJECT_TEXTURES)))]
    v2 = v * rng.uniform(0.35, 0.7) if v > 0.6 else min(1.0, v + rng.uniform(0.3, 0.5))
    colour2 = _hsv(h + rng.uniform(-0.08, 0.08), s * rng.uniform(0.5, 1.0), v2)
    period = max(0.07 * u, size * rng.uniform(0.6, 1.2))
    direction = float(rng.uniform(0, math.pi))
    return Look(texture, colour, colour2, float(period), direction, float(rng.uniform(0, 2 * math.pi)))


def sample_background(rng: np.random.Generator, cfg, room) -> Background:
    """Desaturated interior (gradient / checker / value noise, features >= 0.15 u) and hatched walls."""
    u = cfg.unit
    h = rng.uniform(0, 1)
    v = rng.uniform(0.15, 0.9)
    c1 = _hsv(h, rng.uniform(0.0, 0.35), v)
    c2 = _hsv(
        h + rng.uniform(-0.15, 0.15),
        rng.uniform(0.0, 0.35),
        float(np.clip(v + rng.choice([-1, 1]) * rng.uniform(0.1, 0.3), 0.05, 1.0)),
    )
    texture = BACKGROUND_TEXTURES[int(rng.integers(len(BACKGROUND_TEXTURES)))]
    interior = Look(
        texture,
        c1,
        c2,
        float(rng.uniform(0.15, 0.4) * u),
        float(rng.uniform(0, 2 * math.pi)),
        float(rng.uniform(0, 2 * math.pi)),
    )
    # Walls contrast with the interior so that the room edges (where wall/floor contacts happen) are visible.
    wv = float(np.clip(v + (0.35 if v < 0.5 else -0.35), 0.05, 1.0))
    wall_c = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.5), wv)
    wall = Look("stripes", wall_c, wall_c * np.float32(0.75), float(0.1 * u), math.pi / 4, 0.0)
    cell = float(rng.uniform(0.15, 0.3) * u)
    # The grid covers the view plus the pan margin; drawn in relative units so it scales with the image.
    gh = int(math.ceil((cfg.height + 2 * cfg.border * u) / cell)) + 3
    gw = int(math.ceil((cfg.width + 2 * cfg.border * u) / cell)) + 3
    noise = rng.uniform(0, 1, size=(gh, gw)) if texture == "noise" else None
    return Background(interior, wall, room, noise, cell)


def _cov1d(x, lo, hi):
    """Length of [x - 1/2, x + 1/2] inside [lo, hi] (exact pixel coverage along one axis)."""
    return np.clip(np.minimum(x + 0.5, hi) - np.maximum(x - 0.5, lo), 0.0, 1.0)


def _pattern(look: Look, lx, ly, extent: float):
    """Texture mix weight m in [0, 1] at local coordinates (lx, ly) px; ``extent`` normalises gradients."""
    if look.texture == "solid":
        return None
    c, s = math.cos(look.direction), math.sin(look.direction)
    a = lx * c + ly * s
    k = 2 * math.pi / look.period
    if look.texture == "stripes":
        return 0.5 + 0.5 * np.sin(k * a + look.phase)
    if look.texture == "checker":
        return 0.5 + 0.5 * np.sin(k * a + look.phase) * np.sin(k * (ly * c - lx * s))
    if look.texture == "gradient":
        return np.clip(0.5 + 0.5 * a / extent, 0.0, 1.0)
    raise ValueError(look.texture)


def _mix(look: Look, m, shape):
    if m is None:
        return np.broadcast_to(look.colour, shape + (3,))
    return look.colour + m[..., None] * (look.colour2 - look.colour)


def _smooth_weights(f, size: int):
    """Smoothstep (C1) interpolation weights [..., size] over a 1-D grid at fractional coordinates f."""
    i = np.clip(np.floor(f), 0, size - 2)
    t = np.clip(f - i, 0.0, 1.0)
    t = t * t * (3 - 2 * t)
    w = np.zeros(f.shape + (size,), np.float32)
    i = i.astype(np.int64)[..., None]
    np.put_along_axis(w, i, (1 - t)[..., None], axis=-1)
    np.put_along_axis(w, i + 1, t[..., None], axis=-1)
    return w


def _sin_sep(kx: float, ky: float, phase: float, x, y):
    """sin(kx x + ky y + phase) for x [n, 1, W], y [n, H, 1] from 1-D trig (the background is separable)."""
    ax = kx * x + phase
    by = ky * y
    out = np.sin(ax) * np.cos(by)
    out += np.cos(ax) * np.sin(by)
    return out


def _pattern_sep(look: Look, x, y, extent: float):
    """:func:`_pattern` on the separable grid x [n, 1, W], y [n, H, 1] -> [n, H, W]."""
    c, s = math.cos(look.direction), math.sin(look.direction)
    k = 2 * math.pi / look.period
    if look.texture == "stripes":
        return 0.5 + 0.5 * _sin_sep(k * c, k * s, look.phase, x, y)
    if look.texture == "checker":
        return 0.5 + 0.5 * _sin_sep(k * c, k * s, look.phase, x, y) * _sin_sep(-k * s, k * c, 0.0, x, y)
    if look.texture == "gradient":
        return np.clip(0.5 + (0.5 / extent) * (x * c + y * s), 0.0, 1.0)
    raise ValueError(look.texture)


def render_background(
    bg: Background, pan: np.ndarray, height: int, width: int, labels: np.ndarray | None = None
) -> np.ndarray:
    """Room seen through the camera: [N, H, W, 3] float32 in [0, 1]. ``pan`` [N, 2] px (world = image + pan).

    If given, ``labels`` [N, H, W] int is set to 0 on the wall strips and 1 in the room interior.
    """
    n = pan.shape[0]
    static = not np.any(pan)
    p = pan[:1] if static else pan
    wx = (np.arange(width, dtype=np.float32) + 0.5)[None, None, :] + p[:, 0, None, None].astype(np.float32)
    wy = (np.arange(height, dtype=np.float32) + 0.5)[None, :, None] + p[:, 1, None, None].astype(np.float32)
    look = bg.interior
    if look.texture == "noise":
        gh, gw = bg.noise.shape
        wgt_x = _smooth_weights((wx[:, 0, :] + bg.cell) / bg.cell, gw)  # [n, W, gw]
        wgt_y = _smooth_weights((wy[:, :, 0] + bg.cell) / bg.cell, gh)  # [n, H, gh]
        mi = (wgt_y @ bg.noise.astype(np.float32)) @ wgt_x.transpose(0, 2, 1)
    else:
        mi = _pattern_sep(look, wx - width / 2, wy - height / 2, 0.5 * max(height, width))
    mw = _pattern_sep(bg.wall, wx, wy, 1.0)
    x0, y0, x1, y1 = bg.room
    cov = _cov1d(wx, x0, x1) * _cov1d(wy, y0, y1)
    mi, mw = np.broadcast_to(mi, cov.shape), np.broadcast_to(mw, cov.shape)
    cw, dw = bg.wall.colour, bg.wall.colour2 - bg.wall.colour
    ci, di = look.colour, look.colour2 - look.colour
    out = np.empty(cov.shape + (3,), np.float32)
    wall, buf = np.empty_like(cov), np.empty_like(cov)
    for ch in range(3):  # wall + cov * (interior - wall), per channel, in place (allocation dominates)
        np.multiply(mw, dw[ch], out=wall)
        wall += cw[ch]
        np.multiply(mi, di[ch], out=buf)
        buf += ci[ch]
        buf -= wall
        buf *= cov
        buf += wall
        out[..., ch] = buf
    if labels is not None:
        labels[:] = cov > 0.5
    return np.repeat(out, n, axis=0) if static else out


def render_shapes(
    img: np.ndarray,
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    shapes: list[Shape],
    pan: np.ndarray,
    labels: np.ndarray | None = None,
) -> None:
    """Composite ``shapes`` (back to front) into ``img`` [N, H, W, 3] and write their flow into
    ``flow_fwd`` / ``flow_bwd`` [N-1, H, W, 2] where they are the top-most surface. In place.
    ``labels`` [N, H, W] (optional) gets ``2 + j`` where the j-th shape is the top-most surface.

    Each shape is processed in a per-frame window around it (vectorised over frames) so the cost does
    not grow with the image area.
    """
    n, height, width = img.shape[:3]
    kk = np.arange(n)[:, None, None]
    # Flat views: gathers / scatters with one flat index are several times faster than 3-D fancy indexing.
    img2, ff2, fb2 = img.reshape(-1, 3), flow_fwd.reshape(-1, 2), flow_bwd.reshape(-1, 2)
    for j, sh in enumerate(shapes):
        c = sh.centre - pan  # image coords [N, 2]
        sx = min(int(math.ceil(2 * sh.hx)) + 3, width)
        sy = min(int(math.ceil(2 * sh.hy)) + 3, height)
        ox = np.clip(np.floor(c[:, 0] - sh.hx - 1), 0, width - sx).astype(np.int64)
        oy = np.clip(np.floor(c[:, 1] - sh.hy - 1), 0, height - sy).astype(np.int64)
        xx = ox[:, None, None] + np.arange(sx)[None, None, :]  # [N, 1, sx]
        yy = oy[:, None, None] + np.arange(sy)[None, :, None]  # [N, sy, 1]
        lin = (kk * height + yy) * width + xx  # [N, sy, sx] flat pixel index
        dx = (xx + 0.5 - c[:, 0, None, None]).astype(np.float32)
        dy = (yy + 0.5 - c[:, 1, None, None]).astype(np.float32)
        if sh.kind == "disc":
            d = np.sqrt(dx * dx + dy * dy)
            cov = np.clip(sh.hx - d + 0.5, 0.0, 1.0)
            inside = d < sh.hx
            ca = np.cos(sh.angle).astype(np.float32)[:, None, None]
            sa = np.sin(sh.angle).astype(np.float32)[:, None, None]
            lx, ly = ca * dx + sa * dy, ca * dy - sa * dx  # R(-angle) (p - c)
        else:
            cov = _cov1d(dx, -sh.hx, sh.hx) * _cov1d(dy, -sh.hy, sh.hy)
            inside = (np.abs(dx) < sh.hx) & (np.abs(dy) < sh.hy)
            lx, ly = np.broadcast_to(dx, cov.shape), np.broadcast_to(dy, cov.shape)
        m = _pattern(sh.look, lx, ly, max(sh.hx, sh.hy))
        col = np.array(_mix(sh.look, None if m is None else np.broadcast_to(m, cov.shape), cov.shape), np.float32)
        patch = np.take(img2, lin, axis=0)
        col -= patch
        col *= cov[..., None]
        patch += col
        img2[lin] = patch
        if labels is not None:
            labels.reshape(-1)[lin[inside]] = 2 + j
        if n < 2:
            continue
        da = np.diff(sh.angle)
        cd = (np.cos(da) - 1.0).astype(np.float32)[:, None, None]
        sd = np.sin(da).astype(np.float32)[:, None, None]
        dc = np.diff(c, axis=0).astype(np.float32)
        dxb, dyb = np.broadcast_to(dx, cov.shape), np.broadcast_to(dy, cov.shape)
        # Forward: pixels of frame k (windows 0..N-2); backward: pixels of frame k+1 (windows 1..N-1),
        # stored at flow_bwd[k], i.e. flat index - H*W.
        sel = inside[:-1]
        f0, f1 = dxb[:-1][sel], dyb[:-1][sel]
        kf = np.broadcast_to(kk[:-1], sel.shape)[sel]
        dst = lin[:-1][sel]
        ff2[dst, 0] = dc[kf, 0] + cd[kf, 0, 0] * f0 - sd[kf, 0, 0] * f1
        ff2[dst, 1] = dc[kf, 1] + sd[kf, 0, 0] * f0 + cd[kf, 0, 0] * f1
        sel = inside[1:]
        b0, b1 = dxb[1:][sel], dyb[1:][sel]
        kb = np.broadcast_to(kk[:-1], sel.shape)[sel]
        dst = lin[1:][sel] - height * width
        fb2[dst, 0] = -dc[kb, 0] + cd[kb, 0, 0] * b0 + sd[kb, 0, 0] * b1
        fb2[dst, 1] = -dc[kb, 1] - sd[kb, 0, 0] * b0 + cd[kb, 0, 0] * b1
