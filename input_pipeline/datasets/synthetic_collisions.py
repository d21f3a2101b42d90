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
   forward/backward flow estimated (input_pipeline.flow, DIS by default) and written to ArrayRecord,
   the flow to the split's side file (below). A file that cannot be read (missing events, empty, truncated,
   not a video) is skipped and listed in `build_report.json` beside the dataset, and in one line per file on
   the console.

Example features (N frames of H×W) as stored:
    id          text            "train_00012"
    fps         float32         frames per second
    frames      [N, H, W, 3]    uint8 RGB (decoded from the MP4, codec artefacts included; zlib)
    flow_file   text            the flow side file of the example's split, beside the records
    flow_offset int64           byte offset of the example's flow in that file
    event_frames [E]            int32, 0-based frame of each collision (nearest frame to the contact)
    event_times  [E]            float32, exact contact instant in frames
    event_xy     [E, 2]         float32, contact point (x, y) in pixels
    events_json  text           every event with the objects involved and the impact speed (JSON list)

The flow is stored as the real-video datasets store it (input_pipeline/jpeg_frames.py, docs/datasets.md
"Storage and reading"): per example the forward flow [N−1, H, W, 2] (frame k → k+1, estimated (u, v) in
pixels) then the backward flow (k+1 → k), little-endian float16, in the flat file `flow-<split>.f16`.
`pipeline.data_source` gives them back as `flow_fwd` / `flow_bwd` views of the memory-mapped file, so a
training clip copies its 2 × (T+1) fields instead of decompressing the whole video's flow (version 1.0.0
kept the flow zlib-compressed in each record: 70 % of a 64 px clip's read time went to zlib, for 15 % less
disk; benchmarks/RESULTS.md "Synthetic training input").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import beam_runner, packed_flow, paths, prepare as prepare_lib, worker_pool
from input_pipeline.datasets import synthetic_work, writing
from input_pipeline.datasets.builder_pickling import PickledByConfigName
from input_pipeline.datasets.synthetic_configs import (
    BUILDER_CONFIGS,
    SyntheticCollisionsConfig,
    config_for,
    renders_name,
)
from input_pipeline.datasets.synthetic_work import SPLIT_SEED_OFFSET, scene_for
from input_pipeline.jpeg_frames import flow_to_side_file
from input_pipeline.progress import tqdm, write


def render_split(config: SyntheticCollisionsConfig, split: str, raw_dir: str, workers: int = 1) -> list[str]:
    """Stage 1: writes the split's videos, events and exact flow into raw_dir/split; returns video ids."""
    num_videos = dict(config.split_sizes)[split]
    split_dir = os.path.join(raw_dir, split)
    os.makedirs(split_dir, exist_ok=True)
    ids = [f"{split}_{i:05d}" for i in range(num_videos)]
    todo = [(i, vid) for i, vid in enumerate(ids) if not os.path.exists(os.path.join(split_dir, vid + ".json"))]
    scene = scene_for(config.generator, config.preset, config.image_size, config.num_frames, config.fps)
    jobs = [(config.seed + SPLIT_SEED_OFFSET[split] + i, scene, os.path.join(split_dir, vid)) for i, vid in todo]
    with worker_pool.ordered_map(workers) as run:
        for _ in tqdm(
            run(synthetic_work.render_one, jobs),
            total=len(jobs),
            desc=f"render {split}",
            unit="video",
            disable=not jobs,
        ):
            pass
    return ids


def _frames_of(prepared) -> np.ndarray | None:
    return None if prepared[1] is None else prepared[1]["frames"]


class SyntheticCollisions(PickledByConfigName, tfds.core.GeneratorBasedBuilder):
    """Synthetic 2-D physics videos with exact collision events; see the module docstring."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "2.0.0": "Flow moved from the records to a flat float16 side file per split (flow-<split>.f16).",
    }
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
                    "flow_file": tfds.features.Text(),
                    "flow_offset": tfds.features.Scalar(np.int64),
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
            generators = self._beam_split_generators(splits)
        else:
            generators = {split: self._generate_examples(split) for split in splits}
        return {split: flow_to_side_file(self.data_dir, split, examples) for split, examples in generators.items()}

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
            write(f"skipped: {error}")
            skipped.append(error)
        return sorted(os.path.join(split_dir, f) for f in names if f.endswith(".mp4"))

    def _generate_examples(self, split: str):
        render_split(self.builder_config, split, self.raw_dir, self._workers)
        cfg = self.builder_config
        videos = self._video_paths(split)
        skipped = self.skipped[split]
        with self._prepared(videos) as prepared:
            for _, example, error in tqdm(
                prepared, total=len(videos), desc=f"prepare {split} ({cfg.flow_method} flow)", unit="video"
            ):
                if error:
                    write(f"skipped: {error}")
                    skipped.append(error)
                    continue
                yield example["id"], example

    @contextlib.contextmanager
    def _prepared(self, videos: list[str]):
        """`synthetic_work.prepare_job`'s results for the files `videos`, in order: in a pool of worker
        processes, or, for a flow method on the JAX devices, decoded in the pool and the flow estimated here,
        packed (input_pipeline/packed_flow.py: one process owns the accelerator)."""
        cfg = self.builder_config
        with worker_pool.ordered_map(self._workers) as run:
            if cfg.flow_method not in packed_flow.ON_DEVICE:
                yield run(synthetic_work.prepare_job, [(p, cfg.flow_method, cfg.image_size) for p in videos])
                return
            decoded = run(synthetic_work.prepare_job, [(p, None, cfg.image_size) for p in videos])
            yield (
                (path, None if error else {**example, "flow_fwd": fwd, "flow_bwd": bwd}, error)
                for (path, example, error), fwd, bwd, _ in packed_flow.with_flow(decoded, _frames_of)
            )

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
                write(f"skipped: {error}")
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
