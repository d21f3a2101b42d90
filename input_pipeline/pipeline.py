"""grain pipelines: TFDS ArrayRecord videos → clips → per-process batches → global jax Arrays.

Training (deterministic, checkpointable: the iterator's state goes into every checkpoint):
    source[process_index::process_count] → seed → shuffle → repeat → clip + augment (random_map)
    → batch(global_batch / process_count) → iterator → `mesh.to_global` (in the trainer) on the data axis.
Evaluation: each process reads its share of whole videos and cuts every video into sliding windows
(input_pipeline/clips.py); ta2net_jax/inference.py batches the windows.
"""
from __future__ import annotations

import os

import grain

from input_pipeline import clips

DATASETS = ("synthetic_collisions",)


def get_builder(data_cfg, *, build_if_missing: bool = False, workers: int = 2):
    """The TFDS builder a config's `data` section names (built first if asked and missing)."""
    if data_cfg.name != "synthetic_collisions":
        raise ValueError(f"unknown dataset {data_cfg.name!r}; known: {DATASETS}")
    from input_pipeline import synthetic_collisions as sc
    size, built = data_cfg.get("image_size"), sc.config_for(data_cfg.builder_config).image_size
    if size is not None and size != built:  # configs that state the model's input size must get it
        raise ValueError(f"data.image_size {size} does not match the {data_cfg.builder_config!r} "
                         f"synthetic_collisions videos ({built}×{built})")
    data_dir = os.path.abspath(data_cfg.data_dir)
    if build_if_missing:
        return sc.build(data_dir, data_cfg.builder_config, data_cfg.get("flow_method"), workers=workers)
    builder = sc.SyntheticCollisions(config=sc.config_for(data_cfg.builder_config, data_cfg.get("flow_method")),
                                     data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
        raise FileNotFoundError(f"{builder.data_dir}: dataset not built; run `ta2net build --config CONFIG` "
                                "(or `make demo`) first")
    return builder


def data_source(data_cfg, split: str):
    return get_builder(data_cfg).as_data_source(split)


def train_dataset(config, source, *, process_index: int = 0, process_count: int = 1) -> grain.IterDataset:
    """Infinite, shuffled, augmented training batches of this process ([B_local, ...] NumPy dicts)."""
    batch_size = config.train.batch_size
    if batch_size % process_count:
        raise ValueError(f"train.batch_size {batch_size} is not divisible by {process_count} processes")
    data = config.data
    ds = (grain.MapDataset.source(source)[process_index::process_count]
          .seed(config.seed)
          .shuffle()
          .repeat()
          .random_map(clips.SampleTrainingClip(data.num_frames, data.hflip, data.brightness, data.contrast))
          .batch(batch_size // process_count, drop_remainder=True))
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=data.prefetch_buffer))
    if data.worker_count > 0:
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.worker_count))
    return it


def eval_videos(config, source, *, process_index: int = 0, process_count: int = 1,
                max_videos: int | None = None) -> grain.MapDataset:
    """This process's videos, each mapped to all of its evaluation windows (clips.VideoWindows)."""
    ds = grain.MapDataset.source(source)
    if max_videos is not None:
        ds = ds[:max_videos]
    return ds[process_index::process_count].map(clips.VideoWindows(config.data.num_frames, config.eval.stride))

