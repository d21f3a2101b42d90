"""Public data types of the synthetic generator: configuration, events, videos, event JSON.

Units: lengths in the config are fractions of ``u = min(height, width)`` pixels and times are seconds, so a
112x112 scene is a scaled copy of the 64x64 one with the same seed; everything a video *returns* is in
pixels and frames (see the package docstring for the coordinate conventions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["SceneConfig", "CollisionEvent", "SyntheticVideo", "events_to_json", "events_from_json"]


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Scene parameters. Lengths: fraction of ``u = min(height, width)``; times: seconds; ranges: (lo, hi)."""

    height: int = 64  # pixels
    width: int = 64
    num_frames: int = 80
    fps: float = 25.0

    # --- physical objects ---------------------------------------------------------------------------
    object_count_probs: tuple[float, ...] = (0.5, 0.33, 0.17)  # P(1 object), P(2), P(3), ...
    box_prob: float = 0.4  # P(an object is an axis-aligned box) (else a disc)
    disc_radius: tuple[float, float] = (0.06, 0.11)
    box_half_size: tuple[float, float] = (0.05, 0.11)  # per axis, so boxes have varied aspect
    restitution: tuple[float, float] = (0.55, 0.85)  # per object; a pair uses the product
    friction: float = 0.5  # box sliding friction (deceleration = friction * gravity)
    rolling_friction: float = 0.06  # discs roll, so they lose speed much more slowly than boxes slide
    fall_time: float = 0.6  # seconds to fall one u from rest (sets gravity: 15 frames at 25 fps)
    audible_speed: float = 0.5  # u/s (1.28 px/frame at 64 px, 25 fps): slower impacts are silent
    launch_speed: tuple[float, float] = (0.6, 0.45)  # max |vx|, max upward vy at t = 0 (u/s)
    start_band: tuple[float, float] = (0.05, 0.5)  # start height band, fraction of room from top
    substeps: int = 20  # physics steps per frame

    # --- room: the walls, floor and ceiling are visible strips of this thickness at the image borders ----
    border: float = 0.06  # u; must exceed pan_amplitude so every contact stays inside the image

    # --- distractors (each kind drawn independently with its probability) ---------------------------
    slide_prob: float = 0.5  # 1-2 shapes moving at constant velocity
    orbit_prob: float = 0.4  # 1 shape moving on a circle
    pan_prob: float = 0.4  # sinusoidal camera pan (moves the whole view, not the physics)
    flicker_prob: float = 0.3  # global brightness: smooth oscillation + abrupt single-frame jumps
    noise_prob: float = 0.7  # sensor noise (zero-mean, near-Gaussian)
    slide_speed: tuple[float, float] = (0.1, 0.35)  # u/s
    orbit_radius: tuple[float, float] = (0.08, 0.2)  # u
    orbit_rate: tuple[float, float] = (0.3, 1.0)  # revolutions per second
    pan_amplitude: float = 0.04  # u, max per axis
    pan_period: tuple[float, float] = (1.5, 4.0)  # seconds
    flicker_amplitude: tuple[float, float] = (0.03, 0.1)  # relative gain of the smooth oscillation
    flicker_jump_prob: float = 0.04  # per frame
    flicker_jump: tuple[float, float] = (0.1, 0.25)  # relative gain change of a jump frame
    noise_std: tuple[float, float] = (1.0, 4.0)  # standard deviation, 0..255 levels

    def __post_init__(self):
        if self.height < 8 or self.width < 8 or self.num_frames < 2 or self.fps <= 0 or self.substeps < 1:
            raise ValueError(f"bad SceneConfig sizes: {self}")
        if not 0 <= self.pan_amplitude < self.border:
            raise ValueError("pan_amplitude must be < border so that walls and contacts stay in view")
        if not self.object_count_probs or abs(sum(self.object_count_probs) - 1.0) > 1e-6:
            raise ValueError("object_count_probs must sum to 1")

    @property
    def unit(self) -> float:
        """``u`` in pixels."""
        return float(min(self.height, self.width))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> SceneConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})


@dataclasses.dataclass(frozen=True)
class CollisionEvent:
    """One audible contact. ``x, y``: image pixels, pixel (row i, col j) centred at (j + 0.5, i + 0.5)."""

    frame: int  # round(time_frames), 0-based
    time_frames: float  # contact instant; frame k is shown at t = k
    x: float
    y: float
    objects: tuple[str, str]  # ("disc0", "floor"), ("box1", "disc2"): lower object index first
    impact_speed: float  # normal relative speed at impact, pixels per frame


@dataclasses.dataclass
class SyntheticVideo:
    """A generated clip. N = num_frames, H = height, W = width.

    frames:   [N, H, W, 3] uint8 RGB.
    flow_fwd: [N-1, H, W, 2] float32, (u, v) = (+x, +y) pixels: where the surface seen at each pixel of
              frame k is in frame k+1, minus that pixel.
    flow_bwd: [N-1, H, W, 2] float32: the same from frame k+1 to frame k, at the pixels of frame k+1.
    """

    frames: np.ndarray
    flow_fwd: np.ndarray
    flow_bwd: np.ndarray
    events: list[CollisionEvent]
    fps: float
    seed: int
    metadata: dict


def events_to_json(events: Iterable[CollisionEvent]) -> list[dict]:
    """Events as JSON-serialisable dicts (``objects`` becomes a 2-element list)."""
    return [
        dict(
            frame=int(e.frame),
            time_frames=float(e.time_frames),
            x=float(e.x),
            y=float(e.y),
            objects=[str(e.objects[0]), str(e.objects[1])],
            impact_speed=float(e.impact_speed),
        )
        for e in events
    ]


def events_from_json(items: Sequence[dict]) -> list[CollisionEvent]:
    """Inverse of :func:`events_to_json`."""
    return [
        CollisionEvent(
            frame=int(d["frame"]),
            time_frames=float(d["time_frames"]),
            x=float(d["x"]),
            y=float(d["y"]),
            objects=(str(d["objects"][0]), str(d["objects"][1])),
            impact_speed=float(d["impact_speed"]),
        )
        for d in items
    ]
