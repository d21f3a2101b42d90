"""Synthetic generator v2, built to transfer: the v1 physics and renderer under domain randomisation.

Per video (all drawn from the integer seed): frame size from ``sizes`` (non-square included; the dataset
builder resizes to its square input size, aspect not kept, as real videos are), frame rate an integer in
``fps`` (events labelled at that native rate), duration in ``duration`` seconds (at least ``min_frames``).
Scene additions over v1: thin rods (tall, narrow boxes) launched down to strike the floor; bodies on the floor
that roll (discs), slide (boxes) or rest, with speeds that stop them before the walls (contacts that never
start audibly: labelled negatives); static occluders drawn over everything; hard-negative videos
(``negative_prob``) with no falling or launched body, only floor bodies and a shaky camera. After rendering:
camera zoom / pan / shake with the exact flow composed (:mod:`.randomize`), lighting (exposure, flicker,
drifting illumination ramp, colour cast), motion blur, Gaussian sensor noise, and an H.264 round trip at a
random CRF. Events are exactly those of the physics (start of a contact above the audibility speed), mapped
through the camera at the contact instant. See docs/synthetic.md for every range.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from input_pipeline.synthetic import randomize
from input_pipeline.synthetic.generate import render_world, scene_metadata
from input_pipeline.synthetic.physics import Body
from input_pipeline.synthetic.render import Shape, sample_look
from input_pipeline.synthetic.scene import CollisionEvent, SceneConfig, SyntheticVideo

__all__ = [
    "V2Config",
    "V2_TINY",
    "V2_THUD",
    "V2_JABS",
    "PRESETS",
    "generate_v2",
    "scene_config_for",
    "floor_speed_limit",
]


@dataclasses.dataclass(frozen=True)
class V2Config:
    """Ranges of the v2 randomisation. Lengths: fraction of u = min(height, width); times: seconds."""

    sizes: tuple[tuple[int, int], ...] = ((112, 112), (120, 160), (96, 128), (128, 96), (90, 160), (144, 176))
    fps: tuple[int, int] = (10, 60)  # inclusive integer range
    duration: tuple[float, float] = (3.0, 4.0)
    min_frames: int = 80
    border: float = 0.25  # wider walls than v1: >= max(W/u) * (1 - 1/max zoom), so contacts stay in view
    object_count_probs: tuple[float, ...] = (0.45, 0.35, 0.2)
    slide_prob: float = 0.5
    orbit_prob: float = 0.3
    negative_prob: float = 0.15  # hard negatives: no falling body, floor bodies only, shaky camera
    rod_prob: float = 0.3
    rod_half_width: tuple[float, float] = (0.012, 0.022)
    rod_half_length: tuple[float, float] = (0.1, 0.18)
    rod_speed: tuple[float, float] = (0.6, 1.2)  # u/s, downward
    ground_prob: float = 0.5  # floor bodies (1-2) that roll, slide or rest
    # "Thuds": each body is, with this probability, of a dead material (restitution drawn from
    # thud_restitution): an audible impact that stops it instead of bouncing it back, as a punch into a bag,
    # a stick into a cushion or a box dropped on the floor do. 0 in the default preset (its renders unchanged).
    thud_prob: float = 0.0
    thud_restitution: tuple[float, float] = (0.0, 0.15)
    # "Jabs": with this probability, 1-2 shapes in front of the scene that move back and forth along a line and
    # turn abruptly at both ends (a fist punching air, a hand waving) without touching anything: abrupt
    # reversals that are not events. 0 in the default preset (its renders unchanged).
    jab_prob: float = 0.0
    jab_amplitude: tuple[float, float] = (0.1, 0.3)  # u, end to end
    jab_speed: tuple[float, float] = (0.6, 1.5)  # u/s, the audible impacts' range
    ground_rest_prob: float = 0.3
    occluder_prob: float = 0.3  # 1-2 static foreground bars or blocks
    zoom_base: tuple[float, float] = (0.03, 0.1)  # s = 1 + base (+ sinusoidal zoom)
    zoom_prob: float = 0.3
    zoom_amplitude: tuple[float, float] = (0.02, 0.06)
    zoom_period: tuple[float, float] = (1.5, 4.0)
    pan_prob: float = 0.4
    pan_period: tuple[float, float] = (1.0, 4.0)
    shake_prob: float = 0.3
    shake_std: tuple[float, float] = (0.1, 0.4)  # of the available travel c (1 - 1/s), per frame
    flicker_prob: float = 0.3
    flicker_amplitude: tuple[float, float] = (0.02, 0.1)
    flicker_jump_prob: float = 0.03
    flicker_jump: tuple[float, float] = (0.08, 0.25)
    exposure: tuple[float, float] = (0.7, 1.2)  # global gain
    light_ramp_prob: float = 0.5
    light_ramp: tuple[float, float] = (0.05, 0.3)
    light_drift: float = 0.5  # max rad/s of the ramp direction
    colour_cast: float = 0.1
    blur_prob: float = 0.3
    blur_exposure: tuple[float, float] = (0.2, 0.7)  # fraction of a frame interval
    noise_prob: float = 0.8
    noise_std: tuple[float, float] = (1.0, 8.0)  # 0..255 levels
    codec_prob: float = 0.8
    crf: tuple[int, int] = (18, 40)  # inclusive

    def __post_init__(self):
        if not 1 <= self.fps[0] <= self.fps[1] or self.min_frames < 5 or not self.sizes:
            raise ValueError(f"bad V2Config fps / min_frames / sizes: {self}")
        # A wall contact at x = border lands at s * border - W (s - 1) in the worst camera: keep it in view.
        s_max = 1.0 + self.zoom_base[1] + self.zoom_amplitude[1]
        need = max(max(h, w) / min(h, w) for h, w in self.sizes) * (1.0 - 1.0 / s_max)
        if self.border < need:
            raise ValueError(f"border {self.border} < {need:.3f}: zoom and shake could push contacts out of view")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# For tests: small frames, short clips.
V2_TINY = V2Config(sizes=((48, 64), (64, 48), (48, 48)), duration=(1.0, 1.4), min_frames=16)
# Half of the bodies thud (dead impacts, `thud_prob`): builder config v2_64_thud.
V2_THUD = V2Config(thud_prob=0.5)
# Jabs in most videos (abrupt reversals in the air, never events): builder config v2_64_jabs.
V2_JABS = V2Config(jab_prob=0.7)
# Named presets (the dataset builder's `preset` with generator "v2"; the preview's variants "v2" and "v2_<preset>").
PRESETS = {"default": V2Config(), "tiny": V2_TINY, "thud": V2_THUD, "jabs": V2_JABS}


def scene_config_for(cfg: V2Config, height: int, width: int, num_frames: int, fps: float) -> SceneConfig:
    """The v1 scene of one v2 video: its camera and pixel effects are v2's, so v1's pan, flicker and noise are off."""
    return SceneConfig(
        height=height,
        width=width,
        num_frames=num_frames,
        fps=float(fps),
        object_count_probs=cfg.object_count_probs,
        border=cfg.border,
        slide_prob=cfg.slide_prob,
        orbit_prob=cfg.orbit_prob,
        pan_prob=0.0,
        flicker_prob=0.0,
        noise_prob=0.0,
    )


def floor_speed_limit(x, hx, direction, others, room, friction, gravity) -> float:
    """Largest speed (px/frame) at which a body on the floor at ``x`` (half width ``hx``) moving in
    ``direction`` (+1 right, -1 left) stops, under friction deceleration ``friction * gravity``, with a 20 %
    margin before the wall ahead and before half the gap to any other floor body ahead (``others``: (x, hx)),
    so that floor bodies never start a contact: rolling and sliding stay labelled negatives."""
    x0, _, x1, _ = room
    free = (x1 - hx - x) if direction > 0 else (x - x0 - hx)
    for ox, ohx in others:
        if (ox - x) * direction > 0:
            free = min(free, 0.5 * (abs(ox - x) - hx - ohx))
    return 0.8 * math.sqrt(2.0 * friction * gravity * max(free, 0.0))


def _free(bodies, x, y, hx, hy, gap) -> bool:
    return all(abs(x - b.x) > hx + b.hx + gap or abs(y - b.y) > hy + b.hy + gap for b in bodies)


class _Extras:
    """Scene additions (rods, floor bodies, occluders) drawn from their own stream (hook of render_world)."""

    def __init__(self, rng: np.random.Generator, cfg: V2Config, negative: bool):
        self.rng, self.cfg, self.negative = rng, cfg, negative
        self.info: dict = dict(rods=[], floor_bodies=[], occluders=[])

    def add_bodies(self, bodies, scene: SceneConfig, room, const):
        rng, cfg, u, fps = self.rng, self.cfg, scene.unit, scene.fps
        x0, y0, x1, y1 = room
        bodies = [] if self.negative else list(bodies)
        if not self.negative and rng.random() < cfg.rod_prob:
            hx, hy = rng.uniform(*cfg.rod_half_width) * u, rng.uniform(*cfg.rod_half_length) * u
            for _ in range(50):
                x = rng.uniform(x0 + hx, x1 - hx)
                y = rng.uniform(y0 + hy + 0.02 * u, max(y0 + hy + 0.03 * u, y0 + 0.45 * (y1 - y0)))
                if y + hy < y1 - 0.1 * u and _free(bodies, x, y, hx, hy, 0.03 * u):
                    vy = rng.uniform(*cfg.rod_speed) * u / fps
                    vx = rng.uniform(-0.2, 0.2) * u / fps
                    e = rng.uniform(*scene.restitution)
                    bodies.append(Body(f"rod{len(bodies)}", "box", hx, hy, e, scene.friction, x, y, vx, vy))
                    self.info["rods"].append(bodies[-1].name)
                    break
        if self.negative or rng.random() < cfg.ground_prob:
            placed = []  # (is_disc, hx, hy, x) on the floor, apart from every body
            for _ in range(int(rng.integers(1, 3))):
                is_disc = rng.random() < 0.5
                if is_disc:
                    hx = hy = rng.uniform(*scene.disc_radius) * u
                else:
                    hx, hy = (rng.uniform(*scene.box_half_size, size=2) * u).tolist()
                for _ in range(50):
                    x = rng.uniform(x0 + hx, x1 - hx)
                    if _free(bodies, x, y1 - hy, hx, hy, 0.03 * u) and all(
                        abs(x - px) > hx + phx + 0.03 * u for _, phx, _, px in placed
                    ):
                        placed.append((is_disc, hx, hy, x))
                        break
            for k, (is_disc, hx, hy, x) in enumerate(placed):
                friction = scene.rolling_friction if is_disc else scene.friction
                vx = 0.0
                if rng.random() >= cfg.ground_rest_prob:
                    direction = float(rng.choice([-1.0, 1.0]))
                    others = [(ox, ohx) for m, (_, ohx, _, ox) in enumerate(placed) if m != k]
                    vmax = floor_speed_limit(x, hx, direction, others, room, friction, const["gravity"])
                    vx = direction * rng.uniform(0.3, 1.0) * vmax
                kind = "disc" if is_disc else "box"
                e = rng.uniform(*scene.restitution)
                bodies.append(Body(f"{kind}{len(bodies)}", kind, hx, hy, e, friction, x, y1 - hy, vx, 0.0))
                motion = "rest" if vx == 0.0 else ("roll" if is_disc else "slide")
                self.info["floor_bodies"].append(dict(name=bodies[-1].name, motion=motion))
        if cfg.thud_prob > 0:  # drawn only then, so presets without thuds render exactly as before
            self.info["thuds"] = []
            for body in bodies:
                if rng.random() < cfg.thud_prob:
                    body.restitution = float(rng.uniform(*cfg.thud_restitution))
                    self.info["thuds"].append(body.name)
        return bodies

    def overlays(self, scene: SceneConfig, bg_lum: float) -> list[Shape]:
        rng, cfg, u = self.rng, self.cfg, scene.unit
        n, h, w = scene.num_frames, scene.height, scene.width
        shapes = []
        if rng.random() < cfg.occluder_prob:
            for i in range(int(rng.integers(1, 3))):
                if rng.random() < 0.5:  # a bar across the view
                    vertical = rng.random() < 0.5
                    thick = rng.uniform(0.03, 0.07) * u
                    hx, hy = (thick, h) if vertical else (w, thick)
                else:  # a block
                    hx, hy = (rng.uniform(0.06, 0.14, size=2) * u).tolist()
                centre = np.tile(rng.uniform(0.15, 0.85, size=2) * (w, h), (n, 1))
                look = sample_look(rng, u, 2 * min(hx, hy), bg_lum)
                shapes.append(Shape(f"occluder{i}", "box", float(hx), float(hy), centre, np.zeros(n), look))
                self.info["occluders"].append(dict(name=f"occluder{i}", half_size_px=[round(hx, 3), round(hy, 3)]))
        if cfg.jab_prob > 0:  # drawn only then, so presets without jabs render exactly as before
            self.info["jabs"] = []
            if rng.random() < cfg.jab_prob:
                for i in range(int(rng.integers(1, 3))):
                    shapes.append(self._jab(f"jab{i}", scene, bg_lum))
        return shapes

    def _jab(self, name: str, scene: SceneConfig, bg_lum: float) -> Shape:
        """A disc sweeping back and forth along a line (a triangle wave in time: constant speed, an
        abrupt turn at each end), in front of everything, touching nothing."""
        rng, cfg, u = self.rng, self.cfg, scene.unit
        n, h, w, fps = scene.num_frames, scene.height, scene.width, scene.fps
        length, speed = rng.uniform(*cfg.jab_amplitude) * u, rng.uniform(*cfg.jab_speed) * u / fps
        angle = rng.uniform(0, 2 * math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        start = rng.uniform(0.2, 0.8, size=2) * (w, h) - 0.5 * length * direction
        # Distance travelled folded into [0, length]: the triangle wave of period 2 * length / speed.
        travelled = (speed * np.arange(n) + rng.uniform(0, 2 * length)) % (2 * length)
        along = np.where(travelled <= length, travelled, 2 * length - travelled)
        centre = start + along[:, None] * direction
        radius = rng.uniform(*scene.disc_radius) * u
        look = sample_look(rng, u, 2 * radius, bg_lum)
        self.info["jabs"].append(
            dict(name=name, length_px=round(float(length), 3), speed_px_per_frame=round(float(speed), 4))
        )
        return Shape(name, "disc", float(radius), float(radius), centre, np.zeros(n), look)


_V2_DEFAULT = V2Config()


def generate_v2(
    seed: int, cfg: V2Config = _V2_DEFAULT, *, clean: bool = False, negative: bool | None = None, with_record=False
):
    """One v2 clip from ``seed``: :class:`SyntheticVideo` at its native size and fps (frames [N, H, W, 3] uint8,
    exact flow through the camera, exact events).

    clean: skip lighting, blur, noise and codec (exact-flow checks). negative: force (True) or forbid (False)
    a hard-negative video (default: drawn with ``cfg.negative_prob``). with_record: also return the surface
    map [N, H, W] and the physics trajectory (:class:`~input_pipeline.synthetic.physics.Trajectory`).
    """
    r_meta, r_extra, r_cam, r_light, r_pix = np.random.default_rng([2, seed]).spawn(5)
    h, w = cfg.sizes[int(r_meta.integers(len(cfg.sizes)))]
    fps = int(r_meta.integers(cfg.fps[0], cfg.fps[1] + 1))
    n = max(cfg.min_frames, int(round(r_meta.uniform(*cfg.duration) * fps)))
    drawn_negative = bool(r_meta.random() < cfg.negative_prob)
    negative = drawn_negative if negative is None else bool(negative)
    scene = scene_config_for(cfg, h, w, n, fps)
    extras = _Extras(r_extra, cfg, negative)
    world = render_world(seed, scene, True, extras)
    cam = randomize.sample_camera(r_cam, cfg, n, h, w, fps, shaky=negative)
    img, flow_fwd, flow_bwd, labels = randomize.view_through_camera(
        world["img"], world["flow_fwd"], world["flow_bwd"], world["labels"], cam
    )
    effects: dict = dict(clean=clean)
    if not clean:
        light = randomize.sample_lighting(r_light, cfg, n, fps)
        randomize.apply_lighting(img, light)
        effects["lighting"] = light.info()
        if r_pix.random() < cfg.blur_prob:
            exposure = float(r_pix.uniform(*cfg.blur_exposure))
            img = randomize.motion_blur(img, flow_bwd, flow_fwd, exposure)
            effects["blur_exposure"] = round(exposure, 4)
        if r_pix.random() < cfg.noise_prob:
            std = float(r_pix.uniform(*cfg.noise_std))
            randomize.add_noise(img, r_pix, std / 255.0)
            effects["noise_std_levels"] = round(std, 4)
    img *= 255.0
    img += 0.5
    frames = np.clip(img, 0, 255).astype(np.uint8)
    if not clean and r_pix.random() < cfg.codec_prob:
        crf = int(r_pix.integers(cfg.crf[0], cfg.crf[1] + 1))
        frames = randomize.codec_roundtrip(frames, fps, crf)
        effects["crf"] = crf

    names = [b.name for b in world["bodies"]]
    events = []
    for c in world["traj"].events:
        x, y = cam.to_image(c.x, c.y, c.time)
        other = c.b if isinstance(c.b, str) else names[c.b]
        events.append(CollisionEvent(int(round(c.time)), float(c.time), x, y, (names[c.a], other), float(c.speed)))
    metadata = scene_metadata(seed, scene, world, events, np.zeros((n, 2)))
    metadata.update(
        generator="input_pipeline.synthetic.v2",
        v2=dict(
            size_hw=[h, w],
            fps=fps,
            negative=negative,
            camera=cam.info(),
            effects=effects,
            **extras.info,
            note="objects' trajectory_px are world px (before the camera)",
        ),
    )
    video = SyntheticVideo(frames, flow_fwd, flow_bwd, events, float(fps), int(seed), metadata)
    return (video, labels, world["traj"]) if with_record else video
