"""TFDS builder for the embedded default dataset: synthetic collision videos (ArrayRecord, no TensorFlow).

The build has two stages, so that the synthetic data goes through the same path as real videos:

1. *Render* (input_pipeline.synthetic): for each split, deterministic videos from consecutive seeds are
   written as MP4 files into `<data_dir>/raw/synthetic_collisions/<renders>/<split>/`, each with a
   `<id>.json` of its exact collision events and a `<id>.flow.npz` of its exact optical flow (float16).
   Existing files are kept, so an interrupted build resumes. `<renders>` (`renders_name`) names what the
   renders depend on: a v1 config's own name; for generator v2, whose videos have their own native size and
   are resized only when prepared, the preset (and seed), so `v2_64`, `v2_112` and `v2` share one folder
   and a second input size costs only the prepare stage.
2. *Prepare* (this builder): every video file in those folders (of the generator's numbered renders, only
   this config's prefix) is decoded (input_pipeline.video), its
   forward/backward flow estimated (input_pipeline.flow, DIS by default) and written to ArrayRecord.
   A file that cannot be read (missing events, empty, truncated, not a video) is skipped and listed
   in `build_report.json` beside the dataset, and in one line per file on the console.

Example features (N frames of H×W):
    id          text            "train_00012"
    fps         float32         frames per second
    frames      [N, H, W, 3]    uint8 RGB (decoded from the MP4, codec artefacts included)
    flow_fwd    [N−1, H, W, 2]  float16 estimated (u, v) in pixels, frame k → k+1
    flow_bwd    [N−1, H, W, 2]  float16 estimated (u, v) in pixels, frame k+1 → k
    event_frames [E]            int32, 0-based frame of each collision (nearest frame to the contact)
    event_times  [E]            float32, exact contact instant in frames
    event_xy     [E, 2]         float32, contact point (x, y) in pixels
    events_json  text           every event with the objects involved and the impact speed (JSON list)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds
from tqdm import tqdm

from input_pipeline import beam_runner, paths, prepare as prepare_lib
from input_pipeline.datasets import synthetic_work, writing
from input_pipeline.datasets.synthetic_work import SPLIT_SEED_OFFSET, scene_for


@dataclasses.dataclass
class SyntheticCollisionsConfig(tfds.core.BuilderConfig):
    image_size: int = 64
    num_frames: int = 80
    fps: float = 25.0
    split_sizes: tuple = (("train", 240), ("validation", 40), ("test", 40))
    flow_method: str = "dis"
    seed: int = 0
    # "v1": the original generator at image_size x image_size; "v2": input_pipeline.synthetic.v2 with the
    # V2Config preset `preset` (native sizes and fps vary per video; frames are resized to image_size);
    # "perspective": input_pipeline.synthetic.perspective, a 3-D ray-cast world, with the scene `preset` of
    # synthetic_work.PERSPECTIVE_SCENES (sizes 60x80 .. 120x160 at half scale, 24-60 fps, no exact flow).
    generator: str = "v1"
    preset: str = "default"


PERSPECTIVE_TRAIN_SEED = 7_200_000


def _config(name, **kwargs) -> SyntheticCollisionsConfig:
    return SyntheticCollisionsConfig(name=name, description=name, **kwargs)


def _v2_preset_component(preset: str, seed: int) -> SyntheticCollisionsConfig:
    """Generator v2's `preset` at 64 px, 360 train / 40 validation videos from seeds of its own (`seed` on, so
    no scene repeats v2_64's): a mixture component beside v2_64."""
    return _config(
        f"v2_64_{preset}",
        image_size=64,
        generator="v2",
        preset=preset,
        seed=seed,
        split_sizes=(("train", 360), ("validation", 40)),
    )


BUILDER_CONFIGS = {
    # The demo: 240 training videos of 80 frames (3.2 s at 25 fps), 48×48 so that the small model
    # trains on 2 CPU cores in minutes.
    "small": _config("small", image_size=48),
    # The paper configuration's input size (configs/audible623.py) until the Audible623 builder exists:
    # 112×112; 80 frames leave 76 kept frames, so every 64-frame clip fits.
    "paper": _config("paper", image_size=112),
    # For tests: seconds to build.
    "tiny": _config("tiny", image_size=32, num_frames=24, split_sizes=(("train", 6), ("validation", 3), ("test", 3))),
    # Generator v2 (domain randomisation, docs/synthetic.md): native 90x160 .. 144x176 at 10-60 fps,
    # resized to the paper's 112x112 input.
    "v2": _config(
        "v2", image_size=112, generator="v2", split_sizes=(("train", 2000), ("validation", 200), ("test", 200))
    ),
    # The shipped default detector's training set (configs/default_detector.py): generator v2 resized to
    # 64x64, 880 videos, so that it builds in ~20 min and the model trains in under 2 h on 2 CPU cores
    # (the measured reason for 64 rather than 112 px is in that config's docstring).
    "v2_64": _config(
        "v2_64", image_size=64, generator="v2", split_sizes=(("train", 720), ("validation", 80), ("test", 80))
    ),
    # The same 880 videos at the paper's 112x112 input (prepared from v2_64's renders): the 7x7 source map
    # of the paper's /16 trunks, measured on the 2-core CPU (configs/default_detector.py `:size=112`).
    "v2_112": _config(
        "v2_112", image_size=112, generator="v2", split_sizes=(("train", 720), ("validation", 80), ("test", 80))
    ),
    # The first 240 training and 40 validation videos of v2_64 (same renders): a second flow estimator's
    # version of them costs a third of the full prepare (`_tvl1-jax`: 27 min on 2 cores, measured), enough for
    # a mixture component (configs/default_detector.py `:flow_mix`).
    "v2_64_240": _config("v2_64_240", image_size=64, generator="v2", split_sizes=(("train", 240), ("validation", 40))),
    # Generator v2's presets that test one cue each (docs/synthetic.md), mixture components of a stage
    # (configs/default_detector.py `:thud_mix`, `:jab_mix`): "thud", half of the bodies of a dead material
    # (impacts that stop a body instead of bouncing it); "jabs", shapes that turn abruptly in the air.
    "v2_64_thud": _v2_preset_component("thud", seed=50_000),
    "v2_64_jabs": _v2_preset_component("jabs", seed=60_000),
    # The perspective generator (docs/synthetic.md "Perspective scenes") as a mixture component
    # (configs/default_detector.py `:persp_mix`): a second renderer to train on, 3-D balls under a drifting
    # perspective camera instead of flat bodies in a side view. Seeds 7,200,000 on (validation 8,200,000 on):
    # never one of the held-out test scenes (7,000,000 on) or of `ta2net calibrate`'s (7,100,000 on).
    "perspective_64": _config(
        "perspective_64",
        image_size=64,
        generator="perspective",
        seed=PERSPECTIVE_TRAIN_SEED,
        split_sizes=(("train", 360), ("validation", 40)),
    ),
    "perspective_tiny": _config(
        "perspective_tiny",
        image_size=32,
        generator="perspective",
        preset="tiny",
        seed=PERSPECTIVE_TRAIN_SEED,
        split_sizes=(("train", 2), ("validation", 1)),
    ),
    # For tests: v2 at 48-64 px, 1-1.4 s, resized to 32x32.
    "v2_tiny": _config(
        "v2_tiny",
        image_size=32,
        generator="v2",
        preset="tiny",
        split_sizes=(("train", 4), ("validation", 2), ("test", 2)),
    ),
}


def config_for(name: str, flow_method: str | None = None) -> SyntheticCollisionsConfig:
    """A named builder config; a non-default flow estimator becomes a config of its own name."""
    if name not in BUILDER_CONFIGS:
        raise ValueError(f"unknown synthetic_collisions config {name!r}; known: {sorted(BUILDER_CONFIGS)}")
    base = BUILDER_CONFIGS[name]
    if flow_method is None or flow_method == base.flow_method:
        return base
    return dataclasses.replace(
        base, name=f"{name}_{flow_method}", description=f"{name}, {flow_method} flow", flow_method=flow_method
    )


def renders_name(config: SyntheticCollisionsConfig) -> str:
    """The raw folder of a config's rendered videos. v1 renders at the config's own size, frame count and fps:
    its name (a flow-method variant, "small_farneback", shares its base's). v2 and perspective renders depend
    only on the generator, the preset and the seed (consecutive seeds per split: a config with fewer videos
    reads a prefix of another's)."""
    if config.generator in ("v2", "perspective"):
        preset = "" if config.preset == "default" else f"_{config.preset}"
        return f"{config.generator}{preset}" + (f"_seed{config.seed}" if config.seed else "")
    return config.name.removesuffix(f"_{config.flow_method}")


def render_split(config: SyntheticCollisionsConfig, split: str, raw_dir: str, workers: int = 1) -> list[str]:
    """Stage 1: writes the split's videos, events and exact flow into raw_dir/split; returns video ids."""
    num_videos = dict(config.split_sizes)[split]
    split_dir = os.path.join(raw_dir, split)
    os.makedirs(split_dir, exist_ok=True)
    ids = [f"{split}_{i:05d}" for i in range(num_videos)]
    todo = [(i, vid) for i, vid in enumerate(ids) if not os.path.exists(os.path.join(split_dir, vid + ".json"))]
    scene = scene_for(config.generator, config.preset, config.image_size, config.num_frames, config.fps)
    jobs = [(config.seed + SPLIT_SEED_OFFSET[split] + i, scene, os.path.join(split_dir, vid)) for i, vid in todo]
    with _pool(workers) as pool:
        for _ in tqdm(
            pool.map(synthetic_work.render_one, jobs),
            total=len(jobs),
            desc=f"render {split}",
            unit="video",
            disable=not jobs,
        ):
            pass
    return ids


class _SerialPool:
    def map(self, fn, items):
        return map(fn, items)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _pool(workers: int):
    return concurrent.futures.ProcessPoolExecutor(workers) if workers > 1 else _SerialPool()


class SyntheticCollisions(tfds.core.GeneratorBasedBuilder):
    """Synthetic 2-D physics videos with exact collision events; see the module docstring."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = list(BUILDER_CONFIGS.values())

    def __init__(
        self, *, raw_dir: str | None = None, workers: int = 1, runner: prepare_lib.Runner | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self._raw_root = raw_dir
        self._workers = workers
        self._runner = runner or prepare_lib.Runner()
        self.skipped: dict[str, list[str]] = {}

    @property
    def raw_dir(self) -> str:
        root = self._raw_root or os.path.join(self._data_dir_root, "raw", "synthetic_collisions")
        return os.path.join(root, renders_name(self.builder_config))

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        zlib = dict(encoding=tfds.features.Encoding.ZLIB)
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "fps": tfds.features.Scalar(np.float32),
                    "frames": tfds.features.Tensor(shape=(None, s, s, 3), dtype=np.uint8, **zlib),
                    "flow_fwd": tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float16, **zlib),
                    "flow_bwd": tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float16, **zlib),
                    "event_frames": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                    "event_times": tfds.features.Tensor(shape=(None,), dtype=np.float32),
                    "event_xy": tfds.features.Tensor(shape=(None, 2), dtype=np.float32),
                    "events_json": tfds.features.Text(),
                }
            ),
            homepage="https://arxiv.org/abs/2506.13320",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data is rendered here
        splits = [split for split, _ in self.builder_config.split_sizes]
        if self._runner.name == "beam":
            return self._beam_split_generators(splits)
        return {split: self._generate_examples(split) for split in splits}

    def _video_paths(self, split: str) -> list[str]:
        """The split's video files (sorted): every file in the folder except the generator's renders numbered
        beyond this config's split size (they belong to a larger config sharing the folder: a config reads
        its prefix of the seeds). Events files without a video are named in `skipped`."""
        split_dir = os.path.join(self.raw_dir, split)
        num_videos = dict(self.builder_config.split_sizes)[split]

        def ours(stem: str) -> bool:
            index = stem.removeprefix(f"{split}_")
            numbered_render = index != stem and index.isdigit()
            return not numbered_render or int(index) < num_videos

        names = [f for f in os.listdir(split_dir) if ours(os.path.splitext(f.removesuffix(".flow.npz"))[0])]
        skipped = self.skipped.setdefault(split, [])
        for name in sorted(f for f in names if f.endswith(".json") and f[:-5] + ".mp4" not in names):
            error = f"{os.path.join(split_dir, name[:-5] + '.mp4')}: no such file (its events file {name} is there)"
            tqdm.write(f"skipped: {error}")
            skipped.append(error)
        return sorted(os.path.join(split_dir, f) for f in names if f.endswith(".mp4"))

    def _generate_examples(self, split: str):
        render_split(self.builder_config, split, self.raw_dir, self._workers)
        cfg = self.builder_config
        jobs = [(p, cfg.flow_method, cfg.image_size) for p in self._video_paths(split)]
        skipped = self.skipped[split]
        with _pool(self._workers) as pool:
            for _, example, error in tqdm(
                pool.map(synthetic_work.prepare_job, jobs),
                total=len(jobs),
                desc=f"prepare {split} ({cfg.flow_method} flow)",
                unit="video",
            ):
                if error:
                    tqdm.write(f"skipped: {error}")
                    skipped.append(error)
                    continue
                yield example["id"], example

    # -- the Beam runner: the same per-video functions, two pipelines for all splits ---------------------
    def _beam_split_generators(self, splits: list[str]) -> dict:
        """Renders every split's missing videos in one Beam pipeline, then decodes and estimates the flow of
        every video in a second one; each example goes to `<raw>/<split>/.examples-<flow>-<size>/<id>.npz`
        and TFDS writes them as the local runner's examples (identical values, so identical records)."""
        cfg = self.builder_config
        render_jobs = []
        for split in splits:
            os.makedirs(os.path.join(self.raw_dir, split), exist_ok=True)
            for i in range(dict(cfg.split_sizes)[split]):
                stem = os.path.join(self.raw_dir, split, f"{split}_{i:05d}")
                if not os.path.exists(stem + ".json"):
                    seed = cfg.seed + SPLIT_SEED_OFFSET[split] + i
                    fields = ("generator", "preset", "image_size", "num_frames", "fps")
                    render_jobs.append({"seed": seed, "stem": stem, **{k: getattr(cfg, k) for k in fields}})
        options = self._runner.beam_options
        beam_runner.run("input_pipeline.datasets.synthetic_work:beam_render_job", render_jobs, options)
        prepare_jobs, where = [], []
        for split in splits:
            examples = os.path.join(self.raw_dir, split, f".examples-{cfg.flow_method}-{cfg.image_size}")
            os.makedirs(examples, exist_ok=True)
            for path in self._video_paths(split):
                stem = os.path.basename(path)[: -len(".mp4")]
                prepare_jobs.append([path, cfg.flow_method, cfg.image_size, os.path.join(examples, stem + ".npz")])
                where.append(split)
        errors = beam_runner.run("input_pipeline.datasets.synthetic_work:beam_prepare_job", prepare_jobs, options)
        per_split: dict[str, list] = {split: [] for split in splits}
        for split, job, error in zip(where, prepare_jobs, errors):
            per_split[split].append((job[3], error))
        return {split: self._beam_examples(split, per_split[split]) for split in splits}

    def _beam_examples(self, split: str, results: list):
        skipped = self.skipped[split]
        for example_path, error in results:
            if error:
                tqdm.write(f"skipped: {error}")
                skipped.append(error)
                continue
            example = synthetic_work.load_example(example_path)
            yield example["id"], example
        if results:  # the examples are in the records now: their staging folder goes
            shutil.rmtree(os.path.dirname(results[0][0]), ignore_errors=True)


def make_builder(data_cfg, *, workers: int = 2, runner: prepare_lib.Runner | None = None) -> SyntheticCollisions:
    """The registry's entry point (input_pipeline/registry.py): the builder of `data.builder_config` with
    `data.flow_method`; a config that states `data.image_size` must state this variant's frame size."""
    config = config_for(data_cfg.builder_config, data_cfg.get("flow_method"))
    size = data_cfg.get("image_size")
    if size is not None and size != config.image_size:  # configs that state the model's input size must get it
        raise ValueError(
            f"data.image_size {size} does not match the {data_cfg.builder_config!r} "
            f"synthetic_collisions videos ({config.image_size}×{config.image_size})"
        )
    return SyntheticCollisions(
        config=config,
        data_dir=os.path.abspath(data_cfg.data_dir),
        file_format="array_record",
        workers=workers,
        runner=runner,
    )


def build(builder: SyntheticCollisions) -> SyntheticCollisions:
    """Renders and prepares the dataset (idempotent), writes build_report.json, returns the builder."""
    if builder.is_prepared():
        return builder
    with writing.shuffle_in_memory(builder.data_dir):
        builder.download_and_prepare(file_format="array_record")
    report = {
        "dataset": builder.info.full_name,
        "raw_dir": builder.raw_dir,
        "num_examples": {k: v.num_examples for k, v in builder.info.splits.items()},
        "skipped": builder.skipped,
    }
    with open(os.path.join(builder.data_dir, "build_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return builder


def build_dataset(
    data_dir: str,
    config_name: str = "small",
    flow_method: str | None = None,
    workers: int = 2,
    raw_dir: str | None = None,
    runner: prepare_lib.Runner | None = None,
) -> SyntheticCollisions:
    """Builds one variant into `data_dir` (tests, benchmarks); returns the builder."""
    return build(
        SyntheticCollisions(
            config=config_for(config_name, flow_method),
            data_dir=data_dir,
            file_format="array_record",
            raw_dir=raw_dir,
            workers=workers,
            runner=runner,
        )
    )


def raw_events_json(data_cfg, split: str, video_id: str) -> str:
    """`<data_dir>/raw/synthetic_collisions/<renders>/<split>/<id>.json`: the generator's record of a video
    (exact events, object trajectories and sizes, native pixels), kept beside the dataset."""
    return paths.join(
        paths.resolve(data_cfg.data_dir),
        "raw",
        "synthetic_collisions",
        renders_name(config_for(data_cfg.builder_config)),
        split,
        f"{video_id}.json",
    )
