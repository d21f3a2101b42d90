"""Domain randomisation applied after the scene is rendered (v2 generator): camera, lighting, blur, noise, codec.

Camera model. The scene is rendered once in *world* pixels (the v1 renderer at zero pan) and then viewed by a
camera that zooms about the image centre ``c`` and moves:

    image = s[k] * (world - c - d[k]) + c,        s[k] >= 1,   |d[k]| <= c * (1 - 1/s[k]) per axis,

so the view always lies inside the rendered world (no undefined borders). ``s`` is a base zoom plus an
optional slow sinusoidal zoom; ``d`` combines a sinusoidal pan and per-frame shake (smoothed Gaussian jitter).
At fractional times (contact instants) ``s`` and ``d`` are interpolated linearly between frames.

Exact flow under the camera. For an image pixel x of frame k, the world point is ``p = A_k^-1(x)``; its
world displacement ``F(p)`` is read from the world flow (bilinear where the four surrounding world pixels
belong to the same surface, since rigid motion is affine in position within a surface; nearest otherwise)
and the image flow is ``A_{k+1}(p + F(p)) - x``: object motion and camera motion composed exactly. The
backward flow is the same with the roles of k and k+1 exchanged.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile

import cv2
import numpy as np

__all__ = [
    "Camera",
    "Lighting",
    "sample_camera",
    "view_through_camera",
    "sample_lighting",
    "apply_lighting",
    "motion_blur",
    "add_noise",
    "codec_roundtrip",
    "resize_flow",
]


@dataclasses.dataclass
class Camera:
    """Per-frame zoom ``zoom`` [N] (>= 1) and offset ``offset`` [N, 2] world px about ``centre`` (cx, cy)."""

    zoom: np.ndarray
    offset: np.ndarray
    centre: tuple[float, float]

    def at(self, t: float) -> tuple[float, np.ndarray]:
        """Zoom and offset at a fractional frame time (linear between frames)."""
        n = len(self.zoom)
        t = min(max(float(t), 0.0), n - 1.0)
        k = min(int(math.floor(t)), n - 2) if n > 1 else 0
        a = t - k if n > 1 else 0.0
        k1 = min(k + 1, n - 1)
        return (1 - a) * self.zoom[k] + a * self.zoom[k1], (1 - a) * self.offset[k] + a * self.offset[k1]

    def to_image(self, x: float, y: float, t: float) -> tuple[float, float]:
        """World point (x, y) at time t -> image point."""
        s, d = self.at(t)
        cx, cy = self.centre
        return float(s * (x - cx - d[0]) + cx), float(s * (y - cy - d[1]) + cy)

    def info(self) -> dict:
        return dict(zoom=np.round(self.zoom, 5).tolist(), offset_px=np.round(self.offset, 4).tolist())

    @classmethod
    def from_info(cls, info: dict, height: int, width: int) -> Camera:
        """The camera that `info()` recorded for a height×width video (its values rounded as recorded)."""
        return cls(
            np.asarray(info["zoom"], np.float64), np.asarray(info["offset_px"], np.float64), (width / 2, height / 2)
        )


def sample_camera(rng: np.random.Generator, cfg, n: int, height: int, width: int, fps: float, shaky: bool) -> Camera:
    """Random camera over n frames from the ranges of ``cfg`` (a :class:`~input_pipeline.synthetic.v2.V2Config`).

    ``shaky`` forces pan and shake on (hard negatives: global motion with no contact).
    """
    t = np.arange(n, dtype=np.float64)
    zoom = np.full(n, 1.0 + rng.uniform(*cfg.zoom_base))
    if rng.random() < cfg.zoom_prob:
        amp = rng.uniform(*cfg.zoom_amplitude)
        period = rng.uniform(*cfg.zoom_period) * fps
        zoom = zoom + amp * (0.5 + 0.5 * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi)))
    q = np.zeros((n, 2))
    if shaky or rng.random() < cfg.pan_prob:
        amp = rng.uniform(0.3, 1.0, size=2)
        period = rng.uniform(*cfg.pan_period, size=2) * fps
        q += amp * np.sin(2 * math.pi * t[:, None] / period + rng.uniform(0, 2 * math.pi, size=2))
    if shaky or rng.random() < cfg.shake_prob:
        jitter = rng.normal(0.0, rng.uniform(*cfg.shake_std), size=(n, 2))
        for k in range(1, n):  # AR(1): hand-held shake is correlated over a few frames
            jitter[k] += 0.5 * jitter[k - 1]
        q += jitter
    q = np.clip(q, -1.0, 1.0)
    centre = np.array([width / 2.0, height / 2.0])
    offset = q * centre[None, :] * (1.0 - 1.0 / zoom[:, None])
    return Camera(zoom, offset, (float(centre[0]), float(centre[1])))


def _world_coords(cam: Camera, k: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates of the image pixel centres of frame k: x [W] per column, y [H] per row."""
    cx, cy = cam.centre
    s, d = cam.zoom[k], cam.offset[k]
    return (np.arange(width) + 0.5 - cx) / s + cx + d[0], (np.arange(height) + 0.5 - cy) / s + cy + d[1]


def _sample_flow(flow: np.ndarray, labels: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """World flow [H, W, 2] at the world points of a camera grid (``px`` [W] per column, ``py`` [H] per row):
    bilinear within one surface, nearest across surface boundaries. Returns [h, w, 2] float32."""
    h, w = labels.shape
    fx, fy = px - 0.5, py - 0.5
    ix = np.clip(np.floor(fx), 0, w - 2).astype(np.int64)
    iy = np.clip(np.floor(fy), 0, h - 2).astype(np.int64)
    tx = np.clip(fx - ix, 0.0, 1.0).astype(np.float32)[None, :, None]
    ty = np.clip(fy - iy, 0.0, 1.0).astype(np.float32)[:, None, None]
    r0, r1 = flow[iy], flow[iy + 1]  # rows [h, W, 2]
    l0, l1 = labels[iy], labels[iy + 1]
    bil = (1 - ty) * ((1 - tx) * r0[:, ix] + tx * r0[:, ix + 1]) + ty * ((1 - tx) * r1[:, ix] + tx * r1[:, ix + 1])
    l00 = l0[:, ix]
    same = (l00 == l0[:, ix + 1]) & (l00 == l1[:, ix]) & (l00 == l1[:, ix + 1])
    if same.all():
        return bil
    nx = np.clip(np.rint(fx), 0, w - 1).astype(np.int64)
    ny = np.clip(np.rint(fy), 0, h - 1).astype(np.int64)
    near = flow[ny][:, nx]
    return np.where(same[..., None], bil, near)


def view_through_camera(img: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray, labels: np.ndarray, cam: Camera):
    """World render -> camera view: image [N, H, W, 3] (bilinear), exact flow [N-1, H, W, 2] both ways,
    surface map [N, H, W] (nearest). Inputs are the world-pixel arrays of the renderer at zero pan."""
    n, h, w = img.shape[:3]
    cx, cy = cam.centre
    out = np.empty_like(img)
    out_labels = np.empty_like(labels)
    coords = [_world_coords(cam, k, h, w) for k in range(n)]
    for k, (px, py) in enumerate(coords):
        mx = np.broadcast_to((px - 0.5).astype(np.float32)[None, :], (h, w))
        my = np.broadcast_to((py - 0.5).astype(np.float32)[:, None], (h, w))
        out[k] = cv2.remap(
            img[k],
            np.ascontiguousarray(mx),
            np.ascontiguousarray(my),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        nx = np.clip(np.rint(px - 0.5), 0, w - 1).astype(np.int64)
        ny = np.clip(np.rint(py - 0.5), 0, h - 1).astype(np.int64)
        out_labels[k] = labels[k][ny][:, nx]
    fwd = np.empty((n - 1, h, w, 2), np.float32)
    bwd = np.empty((n - 1, h, w, 2), np.float32)
    for k in range(n - 1):
        for src, dst, flow, lab, res in (
            (k, k + 1, flow_fwd[k], labels[k], fwd),
            (k + 1, k, flow_bwd[k], labels[k + 1], bwd),
        ):
            px, py = coords[src]
            f = _sample_flow(flow, lab, px, py)
            s, d = cam.zoom[dst], cam.offset[dst]
            # image flow = A_dst(p + F(p)) - x, with x = A_src(p)
            x_img = s * (px - cx - d[0]) + cx  # A_dst(p) per column
            y_img = s * (py - cy - d[1]) + cy
            x_src = np.arange(w) + 0.5
            y_src = np.arange(h) + 0.5
            res[k, ..., 0] = np.float32(s) * f[..., 0] + (x_img - x_src).astype(np.float32)[None, :]
            res[k, ..., 1] = np.float32(s) * f[..., 1] + (y_img - y_src).astype(np.float32)[:, None]
    return out, fwd, bwd, out_labels


@dataclasses.dataclass
class Lighting:
    """Global gain ``gain`` [N] (smooth flicker + single-frame jumps), a linear illumination ramp of relative
    amplitude ``ramp`` whose direction ``angle`` [N] (rad) drifts, and a per-channel colour cast ``cast`` [3]."""

    gain: np.ndarray
    ramp: float
    angle: np.ndarray
    cast: np.ndarray

    def info(self) -> dict:
        return dict(
            gain_range=[round(float(self.gain.min()), 4), round(float(self.gain.max()), 4)],
            ramp=round(self.ramp, 4),
            cast=[round(float(c), 4) for c in self.cast],
        )


def sample_lighting(rng: np.random.Generator, cfg, n: int, fps: float) -> Lighting:
    t = np.arange(n, dtype=np.float64)
    gain = np.ones(n)
    if rng.random() < cfg.flicker_prob:
        a = rng.uniform(*cfg.flicker_amplitude)
        gain = 1.0 + a * np.sin(2 * math.pi * t / (rng.uniform(0.3, 2.0) * fps) + rng.uniform(0, 2 * math.pi))
        jumps = rng.random(n) < cfg.flicker_jump_prob
        size = rng.uniform(*cfg.flicker_jump, size=n) * rng.choice([-1.0, 1.0], size=n)
        gain = gain * np.where(jumps, 1.0 + size, 1.0)
    gain = gain * rng.uniform(*cfg.exposure)
    ramp = float(rng.uniform(*cfg.light_ramp)) if rng.random() < cfg.light_ramp_prob else 0.0
    angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-1.0, 1.0) * cfg.light_drift * t / fps
    cast = 1.0 + rng.uniform(-cfg.colour_cast, cfg.colour_cast, size=3)
    return Lighting(gain.astype(np.float32), ramp, angle, cast.astype(np.float32))


def apply_lighting(img: np.ndarray, light: Lighting) -> None:
    """In place on float images [N, H, W, 3] in [0, 1] (before quantisation)."""
    n, h, w = img.shape[:3]
    half = 0.5 * max(h, w)
    x = ((np.arange(w) + 0.5 - w / 2) / half)[None, None, :]
    y = ((np.arange(h) + 0.5 - h / 2) / half)[None, :, None]
    field = light.gain[:, None, None].astype(np.float32)
    if light.ramp:
        c = np.cos(light.angle).astype(np.float32)[:, None, None]
        s = np.sin(light.angle).astype(np.float32)[:, None, None]
        field = field * (1.0 + np.float32(light.ramp) * (x.astype(np.float32) * c + y.astype(np.float32) * s))
    else:
        field = np.broadcast_to(field, (n, h, w))
    img *= field[..., None] * light.cast


def motion_blur(img: np.ndarray, flow_bwd: np.ndarray, flow_fwd: np.ndarray, exposure: float, samples: int = 5):
    """Shutter blur: each frame averages itself sampled along its exact backward flow over ``exposure`` of a
    frame interval (the scene during the exposure before the frame instant). Frame 0 uses minus the forward
    flow. Returns a new array; the flow and the events still refer to the frame instants."""
    n, h, w = img.shape[:3]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = np.empty_like(img)
    for k in range(n):
        f = flow_bwd[k - 1] if k > 0 else -flow_fwd[0]
        acc = np.zeros((h, w, 3), np.float32)
        for j in range(samples):
            a = exposure * j / max(samples - 1, 1)
            acc += cv2.remap(
                img[k], gx + a * f[..., 0], gy + a * f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        out[k] = acc / samples
    return out


def add_noise(img: np.ndarray, rng: np.random.Generator, std: float) -> None:
    """Zero-mean Gaussian sensor noise, ``std`` in [0, 1] intensity units, in place."""
    if std > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(std)


def codec_roundtrip(frames: np.ndarray, fps: float, crf: int) -> np.ndarray:
    """Encode with libx264 (4:2:0, constant rate factor ``crf``) through PyAV and decode again: the codec's
    blocking, ringing and chroma subsampling, as on real footage. Encoded reproducibly (one thread, no lookahead):
    the same frames give the same output in every process."""
    from input_pipeline import video as video_lib

    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        video_lib.write_video(path, frames, fps, crf=int(crf), pix_fmt="yuv420p", reproducible=True)
        decoded = video_lib.read_video(path).frames
    finally:
        os.unlink(path)
    if decoded.shape != frames.shape:
        raise RuntimeError(f"codec round trip changed the clip: {frames.shape} -> {decoded.shape}")
    return decoded


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Flow [..., H, W, 2] resized to [..., height, width, 2] as the frames are (aspect not kept): bilinear,
    with u scaled by width / W and v by height / H."""
    h, w = flow.shape[-3:-1]
    lead = flow.shape[:-3]
    flat = flow.reshape((-1, h, w, 2)).astype(np.float32)
    out = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in flat])
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out.reshape(lead + (height, width, 2))
