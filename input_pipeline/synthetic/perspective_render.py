"""The camera and the ray caster of the held-out perspective scenes (perspective.py): a pin-hole camera, and
per-pixel ray casting of balls (anything with `pos`, `radius`, `colour`) over a textured ground with a sky,
Lambert shading, a specular highlight, a band on every ball and ground shadows of a directional light.
Lengths in metres, pixel coordinates with y down."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Camera", "Look", "render", "rotation"]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation: the camera looks along +z, turned by yaw (about y), pitched down, rolled."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    turn = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    tilt = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])  # positive pitch looks down
    spin = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return turn @ tilt @ spin


class Camera:
    """A drifting pin-hole camera aimed at `target` (m) from a random height, with an optional shake."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, target=(0.0, 0.25, 1.8)):
        self.height, self.width = height, width
        self.focal = (height / 2) / np.tan(np.radians(rng.uniform(40, 60)) / 2)  # px
        self.origin = np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.4, 1.1), 0.0])
        self.drift = np.array([rng.uniform(-0.12, 0.12), 0.0, rng.uniform(-0.08, 0.1)])  # m/s
        self.yaw, self.yaw_rate = rng.uniform(-0.15, 0.15), rng.uniform(-0.04, 0.04)  # rad, rad/s
        # Aimed at the middle of the scene, give or take 6°.
        self.pitch = np.arctan2(self.origin[1] - target[1], target[2]) + np.radians(rng.uniform(-6, 6))
        self.shake = rng.uniform(0.003, 0.012) if rng.uniform() < 0.33 else 0.0  # rad
        self.shake_rng = np.random.default_rng(rng.integers(1 << 31))

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(origin [3], camera-to-world rotation [3, 3]) at time t."""
        jitter = self.shake_rng.normal(0, self.shake, 3) if self.shake else np.zeros(3)
        rot = rotation(self.yaw + self.yaw_rate * t + jitter[0], self.pitch + jitter[1], jitter[2])
        return self.origin + self.drift * t, rot

    def project(self, point: np.ndarray, t: float) -> tuple[float, float]:
        """(x, y) in image pixels of world `point` [3] at time t, without the shake (a label must not depend
        on the jitter drawn for the picture)."""
        origin, rot = self.at_without_shake(t)
        local = rot.T @ (point - origin)
        return (self.width / 2 + self.focal * local[0] / local[2], self.height / 2 - self.focal * local[1] / local[2])

    def at_without_shake(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """`at(t)` without the jitter."""
        return self.origin + self.drift * t, rotation(self.yaw + self.yaw_rate * t, self.pitch, 0.0)

    def rays(self, supersample: int = 2) -> np.ndarray:
        """Unit ray directions in camera space through the sub-pixel centres: [H·s, W·s, 3]."""
        s = supersample
        ys = (np.arange(self.height * s) + 0.5) / s
        xs = (np.arange(self.width * s) + 0.5) / s
        gx, gy = np.meshgrid(xs - self.width / 2, self.height / 2 - ys)
        d = np.stack([gx, gy, np.full_like(gx, self.focal)], -1)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)


@dataclasses.dataclass
class Look:
    """Colours (RGB in [0, 1]) and light of a scene."""

    ground_a: np.ndarray
    ground_b: np.ndarray
    tile: float
    stripes: bool
    sky_low: np.ndarray
    sky_high: np.ndarray
    light: np.ndarray  # unit vector towards the light
    ambient: float


def sphere_hit(origin, dirs, centre, radius):
    """Nearest positive ray parameter of rays `dirs` [..., 3] from `origin` [3] against one sphere (inf: missed)."""
    oc = origin - centre
    b = dirs @ oc
    disc = b * b - (oc @ oc - radius**2)
    root = np.sqrt(np.maximum(disc, 0))
    near, far = -b - root, -b + root
    t = np.where(near > 1e-6, near, far)
    return np.where((disc >= 0) & (t > 1e-6), t, np.inf)


def screen_box(camera: Camera, origin, rot, centre, radius, scale: int):
    """Rows and columns (of the supersampled grid) that can see the sphere, as two slices."""
    local = rot.T @ (centre - origin)
    rows, cols = camera.height * scale, camera.width * scale
    if local[2] <= radius * 1.05:  # at or behind the camera: every ray
        return slice(0, rows), slice(0, cols)
    x = (camera.width / 2 + camera.focal * local[0] / local[2]) * scale
    y = (camera.height / 2 - camera.focal * local[1] / local[2]) * scale
    reach = (camera.focal * radius / np.sqrt(local[2] ** 2 - radius**2) * 1.3 + 2) * scale
    r0, r1 = int(max(0, np.floor(y - reach))), int(min(rows, np.ceil(y + reach)))
    c0, c1 = int(max(0, np.floor(x - reach))), int(min(cols, np.ceil(x + reach)))
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def render(camera: Camera, look: Look, balls: list, t: float, dirs_cam: np.ndarray) -> np.ndarray:
    """One frame [H, W, 3] float in [0, 1] (before noise): sky, ground with shadows, shaded balls."""
    origin, rot = camera.at(t)
    scale = dirs_cam.shape[0] // camera.height
    dirs = dirs_cam @ rot.T  # [Hs, Ws, 3]
    down = np.minimum(dirs[..., 1], -1e-9)
    distance = np.where(dirs[..., 1] < -1e-6, -origin[1] / down, np.inf)
    which = np.full(distance.shape, -1)
    for k, ball in enumerate(balls):
        rows, cols = screen_box(camera, origin, rot, ball.pos, ball.radius, scale)
        hit = sphere_hit(origin, dirs[rows, cols], ball.pos, ball.radius)
        closer = hit < distance[rows, cols]
        distance[rows, cols] = np.where(closer, hit, distance[rows, cols])
        which[rows, cols] = np.where(closer, k, which[rows, cols])

    up = np.clip(dirs[..., 1:2] * 3 + 0.3, 0, 1)
    colour = look.sky_low * (1 - up) + look.sky_high * up
    point = origin + dirs * np.where(np.isfinite(distance), distance, 0)[..., None]

    ground = (which < 0) & np.isfinite(distance)
    if ground.any():
        p = point[ground]
        if look.stripes:
            pattern = np.floor(p[:, 0] / look.tile) % 2
        else:
            pattern = (np.floor(p[:, 0] / look.tile) + np.floor(p[:, 2] / look.tile)) % 2
        base = np.where(pattern[:, None] > 0, look.ground_a, look.ground_b)
        # Shadows on the ground: the ray from the point towards the light passes within a radius of a centre.
        light = np.full(len(p), max(look.light[1], 0.0))
        for ball in balls:
            offset = ball.pos - p
            along = offset @ look.light
            miss = np.einsum("rc,rc->r", offset, offset) - along**2
            light = np.where((along > 0) & (miss < ball.radius**2), 0.45 * light, light)
        lit = base * (look.ambient + (1 - look.ambient) * light)[:, None]
        haze = np.clip((distance[ground] - 2.5) / 8.0, 0, 0.85)[:, None]
        colour[ground] = lit * (1 - haze) + look.sky_low * haze
    if balls and (which >= 0).any():
        k = which[which >= 0]
        centres = np.array([b.pos for b in balls])
        radii = np.array([b.radius for b in balls])
        normal = (point[which >= 0] - centres[k]) / radii[k][:, None]
        diffuse = np.clip(normal @ look.light, 0, None)
        half = look.light - dirs[which >= 0]
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        specular = np.clip(np.einsum("rc,rc->r", normal, half), 0, None) ** 40
        albedo = np.array([b.colour for b in balls])[k]
        band = np.abs(normal[:, 1]) < 0.18  # a darker equatorial band
        albedo = np.where(band[:, None], albedo * 0.55, albedo)
        colour[which >= 0] = albedo * (look.ambient + (1 - look.ambient) * diffuse)[:, None] + 0.6 * specular[:, None]
    return colour.reshape(camera.height, scale, camera.width, scale, 3).mean(axis=(1, 3))
