"""Distractors: motion and appearance changes that are never audible events.

Kinds (each present independently with its ``SceneConfig.<kind>_prob``):

* ``slide``   1-2 discs/boxes moving at constant velocity (may leave the view), discs spinning steadily.
* ``orbit``   one disc/box moving on a circle at constant angular speed.
* ``pan``     sinusoidal camera pan per axis, |pan| <= pan_amplitude * u < border: the view moves, the
              physics does not (walls, floor, background and every shape shift together).
* ``flicker`` global brightness gain: smooth sinusoid plus abrupt single-frame jumps.
* ``noise``   i.i.d. zero-mean sensor noise per pixel and channel (triangular, i.e. near-Gaussian).

Distractor shapes are sampled like the physical objects (same sizes, colours, textures) and drawn behind
them; they never touch anything, so nothing they do is an event. Each kind draws from its own child
generator, so switching one kind off leaves the others (and the physics) unchanged for the same seed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from input_pipeline.synthetic.render import Shape, sample_look

__all__ = ["DISTRACTOR_KINDS", "Distractors", "sample_distractors"]

DISTRACTOR_KINDS = ("slide", "orbit", "pan", "flicker", "noise")


@dataclasses.dataclass
class Distractors:
    """``shapes`` (world px trajectories over N frames); pan parameters (px, frames, rad);
    ``gain`` [N] multiplicative brightness; ``noise_std`` in [0, 1] intensity units."""

    shapes: list[Shape]
    pan_amp: np.ndarray
    pan_period: np.ndarray
    pan_phase: np.ndarray
    gain: np.ndarray
    noise_std: float
    present: dict
    info: dict

    def pan_at(self, t) -> np.ndarray:
        """Camera offset (world = image + pan) at times ``t`` (frames, any shape) -> [..., 2] px."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        return self.pan_amp * np.sin(2 * math.pi * t / self.pan_period + self.pan_phase)


def _shape(rng, cfg, name, centre, angle, bg_lum) -> Shape:
    u = cfg.unit
    if rng.random() < cfg.box_prob:
        kind = "box"
        hx, hy = (rng.uniform(*cfg.box_half_size, size=2) * u).tolist()
    else:
        kind = "disc"
        hx = hy = float(rng.uniform(*cfg.disc_radius) * u)
    look = sample_look(rng, u, 2 * max(hx, hy), bg_lum)
    if kind == "box":
        angle = np.zeros_like(angle)  # boxes stay axis-aligned, like the physical ones
    return Shape(name, kind, hx, hy, centre, angle, look)


def sample_distractors(rng: np.random.Generator, cfg, bg_lum: float) -> Distractors:
    u, fps, n = cfg.unit, cfg.fps, cfg.num_frames
    w, h = cfg.width, cfg.height
    t = np.arange(n, dtype=np.float64)
    r_slide, r_orbit, r_pan, r_flicker, r_noise = rng.spawn(5)
    present = {
        "slide": bool(r_slide.random() < cfg.slide_prob),
        "orbit": bool(r_orbit.random() < cfg.orbit_prob),
        "pan": bool(r_pan.random() < cfg.pan_prob),
        "flicker": bool(r_flicker.random() < cfg.flicker_prob),
        "noise": bool(r_noise.random() < cfg.noise_prob),
    }
    shapes: list[Shape] = []
    info: dict = {}

    if present["slide"]:
        info["slide"] = []
        for i in range(int(r_slide.integers(1, 3))):
            mid = r_slide.uniform(0.15, 0.85, size=2) * (w, h)
            ang = r_slide.uniform(0, 2 * math.pi)
            vel = r_slide.uniform(*cfg.slide_speed) * u / fps * np.array([math.cos(ang), math.sin(ang)])
            spin = r_slide.uniform(-2.0, 2.0) / fps
            centre = mid + (t[:, None] - (n - 1) / 2) * vel
            sh = _shape(r_slide, cfg, f"slide{i}", centre, spin * t + r_slide.uniform(0, 2 * math.pi), bg_lum)
            shapes.append(sh)
            info["slide"].append(dict(kind=sh.kind, velocity_px_per_frame=[round(float(v), 4) for v in vel]))
    if present["orbit"]:
        c0 = r_orbit.uniform(0.3, 0.7, size=2) * (w, h)
        rad = r_orbit.uniform(*cfg.orbit_radius) * u
        rate = r_orbit.choice([-1.0, 1.0]) * r_orbit.uniform(*cfg.orbit_rate) * 2 * math.pi / fps
        phase = r_orbit.uniform(0, 2 * math.pi)
        centre = c0 + rad * np.stack([np.cos(rate * t + phase), np.sin(rate * t + phase)], -1)
        spin = r_orbit.uniform(-2.0, 2.0) / fps
        sh = _shape(r_orbit, cfg, "orbit0", centre, spin * t + r_orbit.uniform(0, 2 * math.pi), bg_lum)
        shapes.append(sh)
        info["orbit"] = dict(kind=sh.kind, radius_px=round(float(rad), 3), rad_per_frame=round(float(rate), 5))

    amp = np.zeros(2)
    period = np.ones(2)
    phase = np.zeros(2)
    if present["pan"]:
        amp = r_pan.uniform(0.3, 1.0, size=2) * r_pan.choice([-1.0, 1.0], size=2) * cfg.pan_amplitude * u
        period = r_pan.uniform(*cfg.pan_period, size=2) * fps
        phase = r_pan.uniform(0, 2 * math.pi, size=2)
        info["pan"] = dict(amplitude_px=amp.round(4).tolist(), period_frames=period.round(3).tolist())

    gain = np.ones(n)
    if present["flicker"]:
        a = r_flicker.uniform(*cfg.flicker_amplitude)
        p = r_flicker.uniform(0.3, 2.0) * fps
        gain = 1.0 + a * np.sin(2 * math.pi * t / p + r_flicker.uniform(0, 2 * math.pi))
        jumps = r_flicker.random(n) < cfg.flicker_jump_prob
        size = r_flicker.uniform(*cfg.flicker_jump, size=n) * r_flicker.choice([-1.0, 1.0], size=n)
        gain = gain * np.where(jumps, 1.0 + size, 1.0)
        info["flicker"] = dict(
            amplitude=round(float(a), 4), period_frames=round(float(p), 3), jump_frames=np.flatnonzero(jumps).tolist()
        )

    noise_std = 0.0
    if present["noise"]:
        noise_std = float(r_noise.uniform(*cfg.noise_std)) / 255.0
        info["noise"] = dict(std_levels=round(noise_std * 255.0, 3))
    return Distractors(shapes, amp, period, phase, gain.astype(np.float32), noise_std, present, info)
