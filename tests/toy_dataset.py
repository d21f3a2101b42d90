"""A toy dataset for tests/test_registry.py: the whole of what adding a dataset takes (one module like this
plus one `registry.register` call). Videos of random noise with a bright flash at known frames; the flow
is a zero field except for a burst of motion at each flash, so the examples have what every pipeline
stage reads (frames, flow_fwd, flow_bwd, event_frames, fps, id)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds


@dataclasses.dataclass
class ToyConfig(tfds.core.BuilderConfig):
    image_size: int = 32
    num_frames: int = 24
    flow_method: str = "dis"  # what a model trained on it would expect at detect time
    videos_per_split: int = 4


class ToyFlashes(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [ToyConfig(name="tiny", description="32×32, 24 frames")]

    def _info(self):
        s = self.builder_config.image_size
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "fps": tfds.features.Scalar(np.float32),
                    "frames": tfds.features.Tensor(shape=(None, s, s, 3), dtype=np.uint8),
                    "flow_fwd": tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float16),
                    "flow_bwd": tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float16),
                    "event_frames": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split) for split in ("train", "validation", "test")}

    def _generate_examples(self, split: str):
        cfg = self.builder_config
        seed = ("train", "validation", "test").index(split)
        rng = np.random.default_rng(seed)
        n, s = cfg.num_frames, cfg.image_size
        for i in range(cfg.videos_per_split):
            events = np.sort(rng.choice(np.arange(4, n - 4), size=2, replace=False)).astype(np.int32)
            frames = rng.integers(0, 60, size=(n, s, s, 3), dtype=np.uint8)
            frames[events] = 250
            flow = np.zeros((n - 1, s, s, 2), np.float16)
            flow[events] = 3.0
            yield (
                f"{seed}_{i}",
                {
                    "id": f"toy_{seed}_{i}",
                    "fps": np.float32(25.0),
                    "frames": frames,
                    "flow_fwd": flow,
                    "flow_bwd": -flow,
                    "event_frames": events,
                },
            )


def make_builder(data_cfg, *, workers: int = 1) -> ToyFlashes:
    del workers
    return ToyFlashes(
        config=data_cfg.get("builder_config") or "tiny",
        data_dir=os.path.abspath(data_cfg.data_dir),
        file_format="array_record",
    )


def build(builder: ToyFlashes) -> ToyFlashes:
    if not builder.is_prepared():
        builder.download_and_prepare(file_format="array_record")
    return builder
