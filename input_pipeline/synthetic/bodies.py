"""The simulated world's objects and what a simulation returns: bodies (discs and axis-aligned boxes, sampled
per scene), audible contacts and per-frame trajectories. Units as physics.py: world pixels, frames."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

WALLS = ("wall_left", "wall_right", "ceiling", "floor")


class Body:
    """One rigid body. ``hx, hy``: half extents in px (a disc has hx = hy = radius). Velocities px/frame,
    ``omega`` rad/frame (positive = clockwise on screen, since y points down)."""

    __slots__ = (
        "name",
        "kind",
        "is_disc",
        "hx",
        "hy",
        "inv_mass",
        "restitution",
        "friction",
        "x",
        "y",
        "vx",
        "vy",
        "angle",
        "omega",
        "asleep",
    )

    def __init__(self, name, kind, hx, hy, restitution, friction, x, y, vx, vy, angle=0.0, omega=0.0):
        self.name, self.kind, self.is_disc = name, kind, kind == "disc"
        self.hx, self.hy = float(hx), float(hy)
        area = math.pi * hx * hx if self.is_disc else 4.0 * hx * hy
        self.inv_mass = 1.0 / area  # uniform density: only mass ratios matter
        self.restitution, self.friction = float(restitution), float(friction)
        self.x, self.y, self.vx, self.vy = float(x), float(y), float(vx), float(vy)
        self.angle, self.omega = float(angle), float(omega)
        self.asleep = False


@dataclasses.dataclass
class Contact:
    """An audible contact. ``x, y`` world px at ``time`` (frames); ``a`` body index; ``b`` body index or a
    wall name; ``normal`` unit vector from b to a; velocities (px/frame) of a (and b) around the impulse."""

    time: float
    x: float
    y: float
    a: int
    b: int | str
    speed: float
    normal: tuple[float, float]
    vel_a_before: tuple[float, float]
    vel_a_after: tuple[float, float]
    vel_b_before: tuple[float, float] | None = None
    vel_b_after: tuple[float, float] | None = None


@dataclasses.dataclass
class Trajectory:
    """Per-frame states: ``pos``/``vel`` [N, B, 2] (world px, px/frame), ``angle`` [N, B] (rad);
    ``events`` sorted by time."""

    pos: np.ndarray
    vel: np.ndarray
    angle: np.ndarray
    events: list[Contact]


def sample_bodies(rng: np.random.Generator, cfg, room: tuple[float, float, float, float]) -> list[Body]:
    """1..len(cfg.object_count_probs) non-overlapping bodies in flight in the upper part of the room.

    Every random draw is in relative units, so the same seed gives the same (scaled) scene at any size.
    """
    u, fps = cfg.unit, cfg.fps
    x0, y0, x1, y1 = room
    room_h = y1 - y0
    n = int(rng.choice(len(cfg.object_count_probs), p=np.asarray(cfg.object_count_probs))) + 1
    bodies: list[Body] = []
    for _ in range(n):
        is_box = rng.random() < cfg.box_prob
        if is_box:
            hx, hy = (rng.uniform(*cfg.box_half_size, size=2) * u).tolist()
        else:
            hx = hy = float(rng.uniform(*cfg.disc_radius)) * u
        restitution = rng.uniform(*cfg.restitution)
        vx = rng.uniform(-1.0, 1.0) * cfg.launch_speed[0] * u / fps
        # Mostly upward launches: a fall from the top band reaches the floor in ~10-20 frames.
        vy = -rng.uniform(-0.3, 1.0) * cfg.launch_speed[1] * u / fps
        angle = rng.uniform(0.0, 2 * math.pi)
        omega = rng.uniform(-2.0, 2.0) / fps if not is_box else 0.0
        placed = None
        for _ in range(50):
            x = rng.uniform(x0 + hx, x1 - hx)
            lo = y0 + hy + 0.02 * u
            hi = max(lo, min(y0 + cfg.start_band[1] * room_h, y1 - hy - 0.1 * u))
            y = rng.uniform(max(lo, y0 + cfg.start_band[0] * room_h), hi) if hi > lo else lo
            gap = 0.03 * u  # start well apart so nothing touches at t = 0
            if all(abs(x - b.x) > hx + b.hx + gap or abs(y - b.y) > hy + b.hy + gap for b in bodies):
                placed = (x, y)
                break
        if placed is None:
            continue
        kind = "box" if is_box else "disc"
        friction = cfg.friction if is_box else cfg.rolling_friction
        bodies.append(
            Body(
                f"{kind}{len(bodies)}", kind, hx, hy, restitution, friction, placed[0], placed[1], vx, vy, angle, omega
            )
        )
    return bodies
