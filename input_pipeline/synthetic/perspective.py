"""Perspective scenes: a second, independently written synthetic generator (3-D balls, a perspective camera).

Generators v1 and v2 (generate.py, v2.py) draw flat bodies in a side view of a walled room, and a model trained
on them can learn that look rather than collisions (issue 12). This module shares no code with them. Three
sets of scenes, from separate seed ranges: the **test** scenes (seeds from `FIRST_SEED`), on which
`benchmarks/perspective_heldout.py` scores the detectors as a stand-in for synthetic data rendered by someone
else, are used for no choice and no training; the **validation** scenes (from `VALIDATION_FIRST_SEED`) are the
second renderer `ta2net calibrate` chooses the shipped model's phase threshold on
(ta2net_jax/evaluation/calibration.py); the builder config `perspective_64` renders **training** scenes from
seeds of its own (input_pipeline/datasets/synthetic_configs.py, `PERSPECTIVE_TRAIN_SEED`) at half the drawn
size (`scale`).

* **World**: 3-D, metres and seconds, y up; balls above a ground plane y = 0 under gravity 9.81 m/s²; a fixed
  step of 1/4000 s. A contact is found when two bodies overlap and its instant is moved back to the touching
  moment along the approach speed (error below one step: < 0.02 frame at 60 fps).
* **Bodies**: 1–3 balls dropped or thrown (radius 7–16 cm, restitution 0.45–0.8 on the ground); 0–3 static
  "clutter" balls (10–22 cm) sitting on the ground that the others may hit; at most one "floater" moving on
  a horizontal circle out of everyone's way (motion that never touches anything). A bounce whose rebound is below
  `REST_SPEED` puts the ball on the ground, where it rolls and slows down (rolling friction).
* **Camera**: a pin-hole (vertical field of view 40–60°) 0.4–1.1 m above the ground, aimed at the middle
  of the scene give or take 6°, drifting sideways and forwards; a third of the videos shake (rotation
  jitter): global motion, no contact.
* **Rendering**: per-pixel ray casting, 2×2 supersampled: a ground with checkers or stripes of two random
  colours fading into the haze, a sky gradient, Lambert-shaded balls with a specular highlight and a band,
  shadows of a directional light on the ground; Gaussian sensor noise. `write_set` stores H.264 4:2:0 at CRF 18–30.
* **Video**: 120×160 to 240×320 (4:3, 16:9, 1:1), 24–60 fps, 2.5–4 s.

An **event** is a contact whose normal approach speed is at least `AUDIBLE_SPEED`: a ball landing on the ground,
on another ball or on a clutter ball, at a point inside the picture (a ball knocked out of view is not heard
here). Rolling, resting, slow touches, the floater and the camera are negatives.
15 % of the videos drop no ball at all. An event's frame is round(t · fps), t the contact instant in seconds.
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import os

import numpy as np

from input_pipeline.synthetic.perspective_render import Camera, Look, render

__all__ = ["AUDIBLE_SPEED", "REST_SPEED", "PerspectiveEvent", "PerspectiveVideo", "generate_perspective", "write_set"]

GRAVITY = 9.81  # m/s²
STEP_S = 1.0 / 4000
AUDIBLE_SPEED = 0.6  # m/s: normal approach speed of an audible contact
REST_SPEED = 0.35  # m/s: a rebound slower than this leaves the ball rolling on the ground
ROLLING_DECELERATION = 0.6  # m/s²
BALL_RESTITUTION = 0.85
SIZES = ((120, 160), (144, 192), (180, 240), (240, 320), (135, 240), (180, 320), (160, 160))
FRAME_RATES = (24.0, 25.0, 30.0, 50.0, 60.0)
NEGATIVE_PROB = 0.15
SCENE_CENTRE = (0.0, 0.25, 1.8)  # m: what the camera is aimed at
FIRST_SEED = 7_000_000  # the test scenes; far from every dataset seed (the generator has its own streams anyway)
VALIDATION_FIRST_SEED = 7_100_000  # the validation scenes (`ta2net calibrate`); never the same as a test scene


@dataclasses.dataclass(frozen=True)
class PerspectiveEvent:
    """One audible contact: `time_s` its instant, `frame` = round(time_s · fps), (x, y) the contact point in
    image pixels at that instant (inside the picture), `kind` "ground" / "ball" / "clutter", `speed` the
    normal approach speed (m/s)."""

    time_s: float
    frame: int
    x: float
    y: float
    kind: str
    speed: float


@dataclasses.dataclass
class PerspectiveVideo:
    """frames [N, H, W, 3] uint8 RGB at `fps`; `events` sorted by time."""

    frames: np.ndarray
    fps: float
    events: list[PerspectiveEvent]


@dataclasses.dataclass
class _Ball:
    pos: np.ndarray  # [3] m
    vel: np.ndarray  # [3] m/s
    radius: float
    colour: np.ndarray  # [3] in [0, 1]
    restitution: float = 0.7
    static: bool = False
    rolling: bool = False

    @property
    def inverse_mass(self) -> float:
        return 0.0 if self.static else 1.0 / self.radius**3


# ---- physics --------------------------------------------------------------------------------------------


def _simulate(balls: list[_Ball], duration_s: float, fps: float, sample):
    """Steps the world, calling `sample(frame_index)` at every frame instant; returns the audible contacts
    as (time_s, contact point [3], kind, normal approach speed in m/s)."""
    contacts = []
    num_frames = int(round(duration_s * fps))
    steps_per_frame = 1.0 / (fps * STEP_S)
    step, next_frame = 0, 0
    while next_frame < num_frames:
        while next_frame < num_frames and step >= next_frame * steps_per_frame:
            sample(next_frame)
            next_frame += 1
        t = (step + 1) * STEP_S
        for b in balls:
            if b.static:
                continue
            if b.rolling:
                speed = np.hypot(b.vel[0], b.vel[2])
                if speed > 0:
                    b.vel[[0, 2]] *= max(0.0, 1.0 - ROLLING_DECELERATION * STEP_S / speed)
                b.pos += b.vel * STEP_S
                b.pos[1] = b.radius
            else:
                b.vel[1] -= GRAVITY * STEP_S
                b.pos += b.vel * STEP_S
                if b.pos[1] < b.radius and b.vel[1] < 0:  # landed during this step
                    approach = -b.vel[1]
                    since = (b.radius - b.pos[1]) / approach
                    if approach >= AUDIBLE_SPEED:
                        contacts.append((t - since, b.pos - [0, b.radius, 0] - b.vel * since, "ground", approach))
                    rebound = b.restitution * approach
                    b.vel[[0, 2]] *= 0.85  # friction during the bounce
                    if rebound < REST_SPEED:
                        b.rolling, b.vel[1], b.pos[1] = True, 0.0, b.radius
                    else:
                        b.vel[1] = rebound
                        b.pos[1] = b.radius + rebound * since
        for i, a in enumerate(balls):
            for b in balls[i + 1 :]:
                if a.static and b.static:
                    continue
                offset = b.pos - a.pos
                distance = float(np.linalg.norm(offset))
                reach = a.radius + b.radius
                if distance >= reach or distance == 0:
                    continue
                normal = offset / distance
                approach = float(np.dot(a.vel - b.vel, normal))
                if approach <= 0:  # already separating
                    continue
                since = min((reach - distance) / approach, STEP_S)
                if approach >= AUDIBLE_SPEED:
                    point = a.pos - a.vel * since + normal * a.radius
                    contacts.append((t - since, point, "clutter" if a.static or b.static else "ball", approach))
                impulse = (1 + BALL_RESTITUTION) * approach / (a.inverse_mass + b.inverse_mass)
                overlap = reach - distance
                for body, sign in ((a, -1.0), (b, 1.0)):
                    if body.static:
                        continue
                    share = body.inverse_mass / (a.inverse_mass + b.inverse_mass)
                    body.vel += sign * impulse * body.inverse_mass * normal
                    body.pos += sign * overlap * share * normal
                    if body.rolling and body.vel[1] > REST_SPEED:
                        body.rolling = False
                    elif body.rolling:
                        body.vel[1] = 0.0
        step += 1
    return contacts


# ---- scenes ---------------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator, saturation=(0.4, 0.9), value=(0.35, 0.95)) -> np.ndarray:
    """RGB in [0, 1] of a random hue with saturation and value drawn from the given ranges."""
    hue, s, v = rng.uniform(0, 6), rng.uniform(*saturation), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(hue / 6, s, v))


def _scene(rng: np.random.Generator) -> tuple[list[_Ball], _Ball | None]:
    """(physical balls, floater or None): clutter first, then the dropped or thrown balls."""
    balls: list[_Ball] = []
    for _ in range(rng.integers(0, 4)):
        r = rng.uniform(0.1, 0.22)
        pos = np.array([rng.uniform(-0.6, 0.6), r, rng.uniform(1.3, 2.4)])
        if all(np.linalg.norm(pos - b.pos) > r + b.radius + 0.1 for b in balls):
            balls.append(_Ball(pos, np.zeros(3), r, _colour(rng, value=(0.3, 0.7)), static=True))
    dropped = 0 if rng.uniform() < NEGATIVE_PROB else int(rng.integers(1, 4))
    for _ in range(dropped):
        r = rng.uniform(0.07, 0.16)
        for _attempt in range(20):
            pos = np.array([rng.uniform(-0.4, 0.4), rng.uniform(0.3, 0.9), rng.uniform(1.4, 2.2)])
            if all(np.linalg.norm(pos - b.pos) > r + b.radius + 0.05 for b in balls):
                break
        towards_centre = np.array([-pos[0], 0.0, SCENE_CENTRE[2] - pos[2]]) * rng.uniform(0.05, 0.3)
        vel = towards_centre + np.array([rng.normal(0, 0.08), rng.uniform(-0.5, 1.0), rng.normal(0, 0.08)])
        balls.append(_Ball(pos, vel, r, _colour(rng), restitution=rng.uniform(0.45, 0.8)))
    # Rolling from the start: motion on the ground that never lands (it may still hit something).
    for _ in range(rng.integers(0, 2)):
        r = rng.uniform(0.06, 0.12)
        pos = np.array([rng.uniform(-0.7, 0.7), r, rng.uniform(1.3, 2.4)])
        if all(np.linalg.norm(pos - b.pos) > r + b.radius + 0.05 for b in balls):
            speed = rng.uniform(0.2, 0.6)
            angle = rng.uniform(0, 2 * np.pi)
            vel = np.array([speed * np.cos(angle), 0.0, speed * np.sin(angle)])
            balls.append(_Ball(pos, vel, r, _colour(rng), rolling=True))
    floater = None
    if rng.uniform() < 0.5:
        floater = _Ball(
            np.array([rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.2), rng.uniform(0.5, 0.9), rng.uniform(2.2, 2.8)]),
            np.zeros(3),
            rng.uniform(0.08, 0.15),
            _colour(rng),
            static=True,
        )
    return balls, floater


def generate_perspective(
    seed: int,
    *,
    supersample: int = 2,
    size: tuple[int, int] | None = None,
    scale: float = 1.0,
    duration_s: float | None = None,
    render_frames: bool = True,
) -> PerspectiveVideo:
    """Renders scene `seed` (deterministic in the seed). `size` (H, W) and `duration_s` override the drawn
    ones (small, short videos for tests); `scale` multiplies the drawn size (training renders at half size:
    a quarter of the ray casting, still more pixels than the 64 px input); the scene itself is the same.
    `render_frames=False`: the events only (frames left black, a hundred times faster)."""
    rng = np.random.default_rng([seed, 0x9E3779B9])
    height, width = SIZES[rng.integers(len(SIZES))]
    fps = float(FRAME_RATES[rng.integers(len(FRAME_RATES))])
    drawn_duration_s = rng.uniform(2.5, 4.0)
    height, width = size or (int(round(height * scale)), int(round(width * scale)))
    duration_s = duration_s or drawn_duration_s
    camera = Camera(rng, height, width, SCENE_CENTRE)
    sun = np.array([rng.uniform(-0.6, 0.6), rng.uniform(0.5, 1.0), rng.uniform(-0.6, 0.2)])
    look = Look(
        ground_a=_colour(rng, (0.0, 0.5), (0.3, 0.8)),
        ground_b=_colour(rng, (0.0, 0.5), (0.3, 0.8)),
        tile=rng.uniform(0.15, 0.6),
        stripes=bool(rng.uniform() < 0.3),
        sky_low=_colour(rng, (0.0, 0.3), (0.7, 0.95)),
        sky_high=_colour(rng, (0.2, 0.6), (0.5, 0.9)),
        light=sun / np.linalg.norm(sun),
        ambient=rng.uniform(0.25, 0.5),
    )
    noise = rng.uniform(0.5, 3.0) / 255
    balls, floater = _scene(rng)
    orbit = (rng.uniform(0.15, 0.3), rng.uniform(0.8, 2.5), rng.uniform(0, 2 * np.pi))  # radius m, rad/s, phase
    dirs = camera.rays(supersample)
    frames = np.zeros((int(round(duration_s * fps)), height, width, 3), np.uint8)
    noise_rng = np.random.default_rng([seed, 1])

    def sample(index: int) -> None:
        if not render_frames:
            return
        t = index / fps
        shown = list(balls)
        if floater is not None:
            radius, speed, phase = orbit
            centre = floater.pos + [radius * np.cos(speed * t + phase), 0.0, radius * np.sin(speed * t + phase)]
            shown.append(dataclasses.replace(floater, pos=centre))
        image = render(camera, look, shown, t, dirs)
        image = image + noise_rng.normal(0, noise, image.shape)
        frames[index] = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)

    contacts = _simulate(balls, duration_s, fps, sample)
    events = []
    for time_s, point, kind, speed in sorted(contacts, key=lambda c: c[0]):
        frame = int(round(time_s * fps))
        if frame < len(frames):
            x, y = camera.project(np.asarray(point, float), time_s)
            if 0 <= x < width and 0 <= y < height:  # a contact out of the picture cannot be seen
                events.append(PerspectiveEvent(float(time_s), frame, float(x), float(y), kind, float(speed)))
    return PerspectiveVideo(frames, fps, events)


def encode(path: str, video: PerspectiveVideo, seed: int) -> int:
    """Writes `video` to `path` as H.264 4:2:0 at a CRF of 18–30 drawn from `seed` (one x264 thread: the same
    seed always gives the same file); returns the CRF."""
    from input_pipeline.video_writer import write_video

    crf = int(np.random.default_rng([seed, 2]).integers(18, 31))
    write_video(path, video.frames, video.fps, crf=crf, pix_fmt="yuv420p", reproducible=True)
    return crf


def write_set(out_dir: str, num_videos: int, first_seed: int = FIRST_SEED, progress: bool = True) -> str:
    """Renders `num_videos` scenes into `out_dir`/perspective_<i>.mp4 (H.264 4:2:0, CRF 18–30 drawn per video,
    one x264 thread: the same seed always gives the same file) with `out_dir`/labels.json ({name: {"frames":
    [...], "events": [...], "fps": ...}}, read by `ta2net eval-videos --labels`); returns the labels path.
    Videos already there are kept."""
    from input_pipeline.progress import tqdm

    os.makedirs(out_dir, exist_ok=True)
    labels_path = os.path.join(out_dir, "labels.json")
    labels = {}
    if os.path.exists(labels_path):
        with open(labels_path) as f:
            labels = json.load(f)
    for i in tqdm(range(num_videos), desc="rendering held-out scenes", disable=not progress):
        name = f"perspective_{i:04d}.mp4"
        path = os.path.join(out_dir, name)
        if os.path.exists(path) and name in labels:
            continue
        seed = first_seed + i
        video = generate_perspective(seed)
        crf = encode(path, video, seed)
        labels[name] = {
            "frames": sorted({e.frame for e in video.events}),
            "events": [dataclasses.asdict(e) for e in video.events],
            "fps": video.fps,
            "size": list(video.frames.shape[1:3]),
            "seed": seed,
            "crf": crf,
        }
        with open(labels_path, "w") as f:
            json.dump(labels, f, indent=1)
    return labels_path
