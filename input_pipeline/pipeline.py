"""grain pipelines: TFDS ArrayRecord videos → clips → per-process batches → global jax Arrays.

Training (deterministic: global batch n is a pure function of n):
    source → seed → shuffle → repeat → clip + augment (random_map): one global element stream;
    process p takes rows p·b … p·b + b − 1 of each global batch (b = global_batch / process_count)
    → batch(b) → iterator from batch `start_batch` → `mesh.to_global` (in the trainer) on the data axis.
    The global batches do not depend on the number of processes, devices or input workers, so a resumed run
    starts its iterator at its step (one batch per step) and may resume on another layout (docs/scaling.md).
Mixtures (`data.mixture`, training only): ((builder_config, fraction[, flow_method]), ...) draws that
fraction of the training clips from another builder config of the same dataset, optionally with another
flow estimator's flow (each component shuffled and repeated on its own, then `grain.MapDataset.mix`),
resized to `data.image_size`; the main builder gives the rest.
Evaluation: each process reads its share of whole videos and cuts every video into sliding windows
(input_pipeline/clips.py); ta2net_jax/inference.py batches the windows.
"""

from __future__ import annotations

import dataclasses
import signal

import grain
import ml_collections
import numpy as np

from input_pipeline import clips, registry


@dataclasses.dataclass
class SampleTrainingClip(grain.transforms.RandomMap):
    """Whole video → one augmented training clip that contains an event (picklable for grain workers),
    resized to image_size×image_size when given and the video is another size (`data.mixture`)."""

    clip_len: int
    hflip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    image_size: int | None = None
    rotate: float = 0.0
    flow_gain: float = 1.0
    anywhere: float = 0.0
    reverse: float = 0.0

    def random_map(self, example: dict, rng: np.random.Generator) -> dict:
        n = example["frames"].shape[0]
        start = clips.training_clip_start(n, example["event_frames"], self.clip_len, rng, anywhere=self.anywhere)
        clip = clips.make_clip(example, start, self.clip_len)
        if self.image_size is not None:
            clip = clips.resize_clip(clip, self.image_size)
        return clips.augment(
            clip,
            rng,
            hflip=self.hflip,
            brightness=self.brightness,
            contrast=self.contrast,
            rotate=self.rotate,
            flow_gain=self.flow_gain,
            reverse=self.reverse,
        )


@dataclasses.dataclass
class VideoWindows(grain.transforms.Map):
    """Whole video → all its evaluation windows stacked ([W, ...]) plus the video's ground truth."""

    clip_len: int
    stride: int

    def map(self, example: dict) -> dict:
        n = example["frames"].shape[0]
        cut = [clips.make_clip(example, s, self.clip_len) for s in clips.window_starts(n, self.clip_len, self.stride)]
        windows = {k: np.stack([c[k] for c in cut]) for k in cut[0]}
        video_id = example["id"]
        return {
            "windows": windows,
            "num_frames": n,
            "fps": float(example["fps"]),
            "id": video_id.decode() if isinstance(video_id, bytes) else str(video_id),
            "event_frames": np.asarray(example["event_frames"], np.int64),
            "event_xy": np.asarray(example.get("event_xy", np.zeros((0, 2))), np.float32),
            "frame_size": tuple(example["frames"].shape[1:3]),
            # The whole video's flow, for the training-free inflection detector (inflection_energy.py).
            "video_flow_fwd": example["flow_fwd"],
            "video_flow_bwd": example["flow_bwd"],
        }


def data_source(data_cfg, split: str):
    """The split's random-access source, with `flow_fwd` / `flow_bwd` as views of the dataset's flow side file
    and, for real-video datasets, lazily decoded JPEG `frames` (input_pipeline/jpeg_frames.py)."""
    builder = registry.get_builder(data_cfg)
    if split not in builder.info.splits:
        raise ValueError(
            f"{builder.data_dir}: no split {split!r} (has {sorted(builder.info.splits)}; see its build_report.txt)"
        )
    source = builder.as_data_source(split)
    if "flow_file" in builder.info.features:
        from input_pipeline.jpeg_frames import DecodedSource

        return DecodedSource(source, builder.data_dir)
    return source


def mixture_configs(data_cfg) -> list[tuple[object, float]]:
    """The `data.mixture` components as (data config naming the component's builder, fraction). An entry is
    (builder_config, fraction) or (builder_config, fraction, flow_method): a component may carry another flow
    estimator's flow than the run's `data.flow_method` (flow-estimator randomisation)."""
    entries = [tuple(entry) for entry in data_cfg.get("mixture", ())]
    if any(len(entry) not in (2, 3) for entry in entries):
        raise ValueError(f"data.mixture {entries}: each entry is (builder_config, fraction[, flow_method])")
    components = [(str(entry[0]), float(entry[1]), entry[2] if len(entry) == 3 else None) for entry in entries]
    if any(not 0.0 < f < 1.0 for _, f, _ in components) or sum(f for _, f, _ in components) >= 1.0:
        raise ValueError(
            f"data.mixture {entries}: each fraction must lie in (0, 1) and together below 1 "
            f"(the main builder {data_cfg.builder_config!r} gives the rest)"
        )
    base = data_cfg.copy_and_resolve_references().to_dict()
    # A component keeps its own frame size (its clips are resized to the run's) and mixes nothing in.
    base.pop("image_size", None)
    base.pop("mixture", None)
    configs = []
    for name, fraction, flow_method in components:
        component = {**base, "builder_config": name}
        if flow_method is not None:
            component["flow_method"] = str(flow_method)
        configs.append((ml_collections.ConfigDict(component), fraction))
    return configs


def mixture_sources(data_cfg) -> list[tuple[object, float]]:
    """(training source, fraction) of each `data.mixture` component."""
    return [(data_source(component, "train"), fraction) for component, fraction in mixture_configs(data_cfg)]


class GlobalBatchRows(grain.transforms.Map):
    """Local element k of a process → element j of the global stream: the process reads rows
    `rows` (sorted global row indices) of every global batch of size B, j = (k // b)·B + rows[k % b]
    with b = len(rows). Picklable (grain worker processes), top-level."""

    def __init__(self, elements: grain.MapDataset, rows, global_batch: int):
        self.elements, self.rows, self.big_b = elements, tuple(int(r) for r in rows), global_batch

    def map(self, k):
        step, i = divmod(int(k), len(self.rows))
        return self.elements[step * self.big_b + self.rows[i]]


def train_dataset(
    config, source, *, process_index: int = 0, process_count: int = 1, rows=None, mixture=(), start_batch: int = 0
) -> grain.IterDataset:
    """Infinite, shuffled, augmented training batches of this process ([B_local, ...] NumPy dicts).

    One global element stream (seeded shuffle of the whole source, repeated; clip sampling and
    augmentation seeded by the element's global position) is cut into global batches of
    `train.batch_size`. A process reads only its rows of each: `rows` (the global rows its devices hold,
    `mesh.process_batch_rows`), by default p·b … p·b + b − 1 (b = B / process_count). The global batches,
    and so training, are the same for any number of processes. `mixture`: (source, fraction) pairs
    (`mixture_sources`) mixed into the stream, their clips resized to `data.image_size`. `start_batch`: the
    first global batch this iterator yields (a resumed run's step): the same batches as a fresh iterator
    advanced that many times, whatever the process count, rows or `data.worker_count` were before.
    """
    batch_size = config.train.batch_size
    if batch_size % process_count:
        raise ValueError(f"train.batch_size {batch_size} is not divisible by {process_count} processes")
    data = config.data
    local_batch = batch_size // process_count
    if rows is None:
        rows = range(process_index * local_batch, (process_index + 1) * local_batch)
    rows = sorted(int(r) for r in rows)
    if len(rows) != local_batch or not all(0 <= r < batch_size for r in rows):
        raise ValueError(f"process {process_index}: batch rows {rows} are not {local_batch} rows of {batch_size}")
    if start_batch < 0:
        raise ValueError(f"start_batch {start_batch} is negative")
    streams = [
        grain.MapDataset.source(src).seed(config.seed + i).shuffle().repeat()
        for i, (src, _) in enumerate([(source, None), *mixture])
    ]
    videos = streams[0]
    if mixture:
        fractions = [f for _, f in mixture]
        videos = grain.MapDataset.mix(streams, [1.0 - sum(fractions), *fractions])
    elements = videos.random_map(
        SampleTrainingClip(
            data.num_frames,
            data.hflip,
            data.brightness,
            data.contrast,
            # Only mixtures resize: a run without one trains on its builder's own size, as it always did.
            image_size=data.image_size if mixture else None,
            rotate=float(data.get("rotate", 0.0)),
            flow_gain=float(data.get("flow_gain", 1.0)),
            anywhere=float(data.get("clips_anywhere", 0.0)),
            reverse=float(data.get("time_reverse", 0.0)),
        )
    )
    num_local = (len(elements) // batch_size) * local_batch
    ds = (
        grain.MapDataset.range(num_local)
        .map(GlobalBatchRows(elements, rows, batch_size))
        .batch(local_batch, drop_remainder=True)
    )[start_batch:]
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=data.prefetch_buffer))
    if data.worker_count > 0:
        options = grain.MultiprocessingOptions(num_workers=data.worker_count)
        it = it.mp_prefetch(options, worker_init_fn=leave_ctrl_c_to_the_trainer)
    return it


def leave_ctrl_c_to_the_trainer(worker_index: int, worker_count: int) -> None:
    """grain worker processes ignore SIGINT: a terminal's Ctrl-C reaches every process of the job, and a worker
    killed by it would end the run with grain's "worker terminated unexpectedly" and a traceback per worker
    instead of the trainer's own stop (a checkpoint at the next step: distributed.PreemptionWatcher)."""
    del worker_index, worker_count
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def eval_videos(
    config, source, *, process_index: int = 0, process_count: int = 1, max_videos: int | None = None
) -> grain.MapDataset:
    """This process's videos, each mapped to all of its evaluation windows (VideoWindows)."""
    ds = grain.MapDataset.source(source)
    if max_videos is not None:
        ds = ds[:max_videos]
    return ds[process_index::process_count].map(VideoWindows(config.data.num_frames, config.eval.stride))
