"""The per-video work of the synthetic_collisions build (render one video; decode and estimate the flow of one),
without TFDS, so that Apache Beam workers (`.venv-beam`, no TFDS there) run exactly the code the local
process pool runs (`ta2net build --runner beam`, input_pipeline/beam_runner.py).

Beam jobs and results are JSON; an example (arrays) goes from a worker to the TFDS writer through an
uncompressed `.npz` file (`save_example` / `load_example`), which keeps every value, dtype and shape.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from input_pipeline import flow as flow_lib, prepare as prepare_lib, synthetic, video as video_lib, worker_pool
from input_pipeline.synthetic import perspective as perspective_lib, v2 as v2_lib

SPLIT_SEED_OFFSET = {"train": 0, "validation": 1_000_000, "test": 2_000_000}


@dataclasses.dataclass(frozen=True)
class PerspectiveScene:
    """The perspective generator (input_pipeline/synthetic/perspective.py) as a training source: its drawn
    sizes times `scale`, one ray per pixel (`supersample`), `duration_s` overriding the drawn 2.5–4 s."""

    scale: float = 0.5
    supersample: int = 1
    duration_s: float | None = None


PERSPECTIVE_SCENES = {"default": PerspectiveScene(), "tiny": PerspectiveScene(scale=0.25, duration_s=1.0)}


def scene_for(generator: str, preset: str, image_size: int, num_frames: int, fps: float):
    """The generator's scene: v1 at image_size² (num_frames at fps), a v2 preset (sizes and fps vary), or the
    perspective generator (preset "default" or "tiny"; sizes and fps vary)."""
    if generator == "v2":
        return v2_lib.PRESETS[preset]
    if generator == "perspective":
        return PERSPECTIVE_SCENES[preset]
    return synthetic.SceneConfig(height=image_size, width=image_size, num_frames=num_frames, fps=fps)


def _render_perspective(seed: int, scene: PerspectiveScene, stem: str) -> None:
    """stem.mp4 (H.264 at the generator's drawn CRF) and stem.json in the v1/v2 events format: objects
    ("ball", kind), impact_speed in m/s (this generator's unit). No exact flow: it computes none."""
    video = perspective_lib.generate_perspective(
        seed, supersample=scene.supersample, scale=scene.scale, duration_s=scene.duration_s
    )
    perspective_lib.encode(stem + ".mp4", video, seed)
    events = [
        synthetic.CollisionEvent(e.frame, e.time_s * video.fps, e.x, e.y, ("ball", e.kind), e.speed)
        for e in video.events
    ]
    record = {
        "seed": seed,
        "fps": video.fps,
        "events": synthetic.events_to_json(events),
        "frame_size": list(video.frames.shape[1:3]),
        "generator": "perspective",
    }
    with open(stem + ".json", "w") as f:  # last: marks the video complete
        json.dump(record, f)


def render_one(job) -> None:
    """(seed, scene, stem) → stem.mp4, stem.flow.npz (exact flow, float16; not for the perspective
    generator), stem.json (events; written last)."""
    seed, scene, stem = job
    if isinstance(scene, PerspectiveScene):
        return _render_perspective(seed, scene, stem)
    v2 = isinstance(scene, v2_lib.V2Config)
    # v2 frames already went through their random-CRF codec round trip: stored losslessly from here on.
    video = v2_lib.generate_v2(seed, scene) if v2 else synthetic.generate_video(seed, scene)
    video_lib.write_video(stem + ".mp4", video.frames, video.fps)
    prepare_lib.save_npz(  # fixed member timestamps: the same video renders to the same bytes
        stem + ".flow.npz",
        compress=True,
        flow_fwd=video.flow_fwd.astype(np.float16),
        flow_bwd=video.flow_bwd.astype(np.float16),
    )
    # The JSON goes last: its presence marks the video as complete for resumed builds.
    with open(stem + ".json", "w") as f:
        json.dump(
            {
                "seed": seed,
                "fps": video.fps,
                "events": synthetic.events_to_json(video.events),
                "metadata": video.metadata,
                **({"frame_size": list(video.frames.shape[1:3])} if v2 else {}),
            },
            f,
        )


def prepare_video(path: str, flow_method: str | None, size: int) -> dict:
    """Decode, check, estimate flow of one rendered file: the example. Raises video.VideoReadError naming the
    file. Frames [N, size, size, 3] uint8; flow_fwd/flow_bwd [N−1, size, size, 2] float16 (pixels). With
    `flow_method` None the example has no flow yet (the build adds it: packed_flow.with_flow)."""
    events_path = path[: -len(".mp4")] + ".json"
    if not os.path.exists(events_path):
        raise video_lib.VideoReadError(path, f"no events file {os.path.basename(events_path)} beside it")
    decoded = video_lib.read_video(path, size=(size, size))
    video_lib.check_frame_count(path, decoded.frames.shape[0])
    try:
        with open(events_path) as f:
            record = json.load(f)
        events_record = record["events"]
        events = synthetic.events_from_json(events_record)
        # v2 videos have their own native size; events are in its pixels and follow the frames' resize.
        native_h, native_w = record.get("frame_size", (size, size))
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise video_lib.VideoReadError(events_path, f"unreadable events file ({type(err).__name__}: {err})") from None
    flows = {}
    if flow_method is not None:
        flows = dict(zip(("flow_fwd", "flow_bwd"), flow_lib.estimate_flow(decoded.frames, flow_method)))
    return {
        "id": os.path.basename(path)[: -len(".mp4")],
        "fps": np.float32(decoded.fps),
        "frames": decoded.frames,
        **flows,
        "event_frames": np.array([e.frame for e in events], np.int32),
        "event_times": np.array([e.time_frames for e in events], np.float32),
        "event_xy": np.array([[e.x * (size / native_w), e.y * (size / native_h)] for e in events], np.float32).reshape(
            -1, 2
        ),
        "events_json": json.dumps(events_record),
    }


def prepare_job(job):
    """(path, flow_method or None, size) → (path, example or None, error line naming the file or None)."""
    path, method, size = job
    try:
        return path, prepare_video(path, method, size), None
    except video_lib.VideoReadError as err:
        return path, None, str(err)


# ---- Beam jobs (JSON in, JSON out) ------------------------------------------------------------------------

_TEXT = ("id", "events_json")


def save_example(path: str, example: dict) -> None:
    """An example as an uncompressed npz (text as 0-d unicode arrays), written atomically (rename)."""
    tmp = f"{path}.partial-{os.getpid()}"
    prepare_lib.save_npz(tmp, **{k: np.asarray(v) for k, v in example.items()})
    os.replace(tmp, path)


def load_example(path: str) -> dict:
    """The dict `prepare_video` returned: text back to str, `fps` back to a float32 scalar."""
    with np.load(path) as z:
        example = {k: z[k] for k in z.files}
    for key in _TEXT:
        example[key] = str(example[key])
    example["fps"] = np.float32(example["fps"])
    return example


def beam_render_job(job: dict) -> None:
    """Renders one video unless its events file (written last) is already there: a rerun or a retried
    bundle redoes nothing. job: {"seed", "stem", "generator", "preset", "image_size", "num_frames", "fps"}."""
    if os.path.exists(job["stem"] + ".json"):
        return None
    scene = scene_for(job["generator"], job["preset"], job["image_size"], job["num_frames"], job["fps"])
    render_one((job["seed"], scene, job["stem"]))
    return None


def beam_prepare_job(job: list) -> str | None:
    """[video path, flow method, size, example .npz path] → None (example written) or the error line."""
    path, method, size, example_path = job
    if os.path.exists(example_path):
        return None
    worker_pool.one_opencv_thread()  # as the local pool's workers: the processes are the parallelism
    _, example, error = prepare_job((path, method, size))
    if error is None:
        save_example(example_path, example)
    return error
