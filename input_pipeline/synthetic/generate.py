"""``generate_video``: seed -> simulated, rendered clip with exact events and exact optical flow."""

from __future__ import annotations

import numpy as np

from input_pipeline.synthetic.distractors import sample_distractors
from input_pipeline.synthetic.physics import sample_bodies, simulate
from input_pipeline.synthetic.render import (
    Shape,
    luminance,
    render_background,
    render_shapes,
    sample_background,
    sample_look,
)
from input_pipeline.synthetic.scene import CollisionEvent, SceneConfig, SyntheticVideo

__all__ = ["generate_video", "generate_with_labels", "physics_constants", "render_world", "scene_metadata"]

_DEFAULT = SceneConfig()


def physics_constants(cfg: SceneConfig) -> dict:
    """Room (world px), gravity (px/frame^2) and audibility threshold (px/frame) of a config."""
    u, b = cfg.unit, cfg.border * cfg.unit
    return dict(
        room=(b, b, cfg.width - b, cfg.height - b),
        gravity=2.0 * u / (cfg.fall_time * cfg.fps) ** 2,
        audible=cfg.audible_speed * u / cfg.fps,
    )


def _r(x, nd=3):
    return [round(float(v), nd) for v in np.ravel(x)]


def generate_video(seed: int, config: SceneConfig = _DEFAULT) -> SyntheticVideo:
    """Generate one clip deterministically from ``seed`` (see the package docstring for conventions).

    Returns frames [N, H, W, 3] uint8, flow_fwd / flow_bwd [N-1, H, W, 2] float32 px, and the audible
    collision events sorted by time (frames; image px).
    """
    return _generate(seed, config, False)[0]


def generate_with_labels(seed: int, config: SceneConfig = _DEFAULT) -> tuple[SyntheticVideo, np.ndarray]:
    """:func:`generate_video` plus the surface map [N, H, W] int16 of the surface whose flow each pixel
    carries: 0 wall strip, 1 room interior, 2 + j the j-th drawn shape (distractors in
    ``metadata["distractors"]["shapes"]`` order, then ``metadata["objects"]``)."""
    return _generate(seed, config, True)


def render_world(seed: int, cfg: SceneConfig, want_labels: bool, extras=None) -> dict:
    """Simulate and render a scene before any pixel effect: float32 image [N, H, W, 3] in [0, 1], exact flow,
    surface map (or None), the bodies, trajectory, shapes, distractors, pan, background and constants.

    ``extras`` (the v2 generator, :mod:`input_pipeline.synthetic.v2`) may add bodies after the v1 ones
    (``extras.add_bodies(bodies, cfg, room, const)``) and shapes drawn over everything
    (``extras.overlays(cfg, bg_lum)``); it draws from its own random streams, so v1 scenes are unchanged.
    """
    n, h, w = cfg.num_frames, cfg.height, cfg.width
    # Independent streams: appearance or distractor settings never change the physics of a seed.
    r_phys, r_look, r_dist, r_pixels = np.random.default_rng(seed).spawn(4)
    const = physics_constants(cfg)
    room = const["room"]
    bodies = sample_bodies(r_phys, cfg, room)
    if extras is not None:
        bodies = extras.add_bodies(bodies, cfg, room, const)
    traj = simulate(bodies, room, n, const["gravity"], const["audible"], cfg.substeps)

    bg = sample_background(r_look, cfg, room)
    bg_lum = 0.5 * (luminance(bg.interior.colour) + luminance(bg.interior.colour2))
    objects = [
        Shape(
            b.name,
            b.kind,
            b.hx,
            b.hy,
            traj.pos[:, i],
            traj.angle[:, i],
            sample_look(r_look, cfg.unit, 2 * max(b.hx, b.hy), bg_lum),
        )
        for i, b in enumerate(bodies)
    ]
    dist = sample_distractors(r_dist, cfg, bg_lum)
    pan = dist.pan_at(np.arange(n))

    labels = np.empty((n, h, w), np.int16) if want_labels else None
    img = render_background(bg, pan, h, w, labels)
    dpan = np.diff(pan, axis=0).astype(np.float32)  # background flow is -dpan (image = world - pan)
    flow_fwd = np.empty((n - 1, h, w, 2), np.float32)
    flow_fwd[:] = -dpan[:, None, None, :]
    flow_bwd = np.empty((n - 1, h, w, 2), np.float32)
    flow_bwd[:] = dpan[:, None, None, :]
    overlays = extras.overlays(cfg, bg_lum) if extras is not None else []
    render_shapes(img, flow_fwd, flow_bwd, dist.shapes + objects + overlays, pan, labels)
    return dict(
        img=img,
        flow_fwd=flow_fwd,
        flow_bwd=flow_bwd,
        labels=labels,
        bodies=bodies,
        traj=traj,
        objects=objects,
        overlays=overlays,
        dist=dist,
        pan=pan,
        bg=bg,
        const=const,
        r_pixels=r_pixels,
    )


def scene_metadata(seed: int, cfg: SceneConfig, world: dict, events: list, pan: np.ndarray) -> dict:
    """The JSON record of a rendered scene (object trajectories in image px under the given ``pan``)."""
    bodies, traj, objects, dist, bg, const = (world[k] for k in ("bodies", "traj", "objects", "dist", "bg", "const"))

    def obj_meta(i, b):
        size = dict(radius_px=round(b.hx, 4)) if b.kind == "disc" else dict(half_size_px=_r((b.hx, b.hy), 4))
        look = objects[i].look
        return dict(
            name=b.name,
            kind=b.kind,
            **size,
            colour=look.to_json()["colour"],
            look=look.to_json(),
            restitution=round(b.restitution, 4),
            trajectory_px=[_r(p) for p in traj.pos[:, i] - pan],
            angle_rad=_r(traj.angle[:, i], 4),
        )

    def shape_meta(s):
        return dict(
            name=s.name,
            kind=s.kind,
            half_size_px=_r((s.hx, s.hy), 4),
            colour=s.look.to_json()["colour"],
            look=s.look.to_json(),
        )

    return dict(
        generator="input_pipeline.synthetic",
        seed=int(seed),
        config=cfg.to_dict(),
        conventions="image px, x right / y down, pixel (row i, col j) centred at (j+0.5, i+0.5); "
        "time in frames (frame k at t=k); flow in px per frame step",
        room_world_px=_r(const["room"]),
        gravity_px_per_frame2=round(const["gravity"], 6),
        audible_speed_px_per_frame=round(const["audible"], 6),
        background=dict(interior=bg.interior.to_json(), wall=bg.wall.to_json()),
        objects=[obj_meta(i, b) for i, b in enumerate(bodies)],
        distractors=dict(present=dict(dist.present), shapes=[shape_meta(s) for s in dist.shapes], **dist.info),
        pan_px=[_r(p) for p in pan],
        num_events=len(events),
    )


def _generate(seed: int, cfg: SceneConfig, want_labels: bool):
    world = render_world(seed, cfg, want_labels)
    img, flow_fwd, flow_bwd, labels = world["img"], world["flow_fwd"], world["flow_bwd"], world["labels"]
    bodies, traj, dist, pan, r_pixels = (world[k] for k in ("bodies", "traj", "dist", "pan", "r_pixels"))
    if dist.present["flicker"]:
        img *= dist.gain[:, None, None, None]
    if dist.noise_std > 0:
        # Triangular noise (difference of two uniform bytes, std 104.51 before scaling): close to Gaussian
        # and about 4x cheaper to draw than standard_normal, which would dominate the generation time.
        b = np.frombuffer(r_pixels.bytes(2 * img.size), np.uint8).reshape((2,) + img.shape)
        noise = b[0].astype(np.float32)
        noise -= b[1]
        noise *= np.float32(dist.noise_std / 104.5115)
        img += noise
    img *= 255.0
    img += 0.5
    frames = np.clip(img, 0, 255).astype(np.uint8)

    names = [b.name for b in bodies]
    events = []
    for c in traj.events:
        px, py = dist.pan_at(c.time).tolist()
        other = c.b if isinstance(c.b, str) else names[c.b]
        events.append(
            CollisionEvent(
                frame=int(round(c.time)),
                time_frames=float(c.time),
                x=float(c.x - px),
                y=float(c.y - py),
                objects=(names[c.a], other),
                impact_speed=float(c.speed),
            )
        )

    metadata = scene_metadata(seed, cfg, world, events, pan)
    return SyntheticVideo(frames, flow_fwd, flow_bwd, events, float(cfg.fps), int(seed), metadata), labels
