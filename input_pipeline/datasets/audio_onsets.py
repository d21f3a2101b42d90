"""`audio_onsets`: any folder of videos with a soundtrack, labelled by its audio onsets (no annotation file).

The labels come from the sound (input_pipeline/audio_labels.py, docs/audio.md): librosa onsets at the
video's native rate, shifted by the audio–video lag estimated over the whole folder (bounded to
±`max_lag` frames), the event strengths kept. Clips whose soundtrack does not follow the motion (music,
speech, silence: low onset/inflection agreement) or that have no audio are left out and listed with the
reason in `build_report.json` / `build_report.txt`, with the lag and its correlation per candidate lag.

Splits: every video whose stem hashes (md5) under `test_fraction` goes to `test`, under
`test_fraction + validation_fraction` to `validation`, the rest to `train`; a split left empty is
reported. Examples carry the common real-video features (real_videos.py) plus `event_strengths` [E].

    ta2net prepare --config configs/audio_onsets.py --config.data.manual_dir=DIR      # decode + flow
    ta2net build   --config configs/audio_onsets.py --config.data.manual_dir=DIR      # labels + records
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import audio_labels, frame_times, video as video_lib
from input_pipeline.datasets.audible623_csv import Anomaly
from input_pipeline.datasets.real_video_configs import Item, RealVideoConfig, builder_from_config, make_builder_of
from input_pipeline.datasets.real_videos import RealVideoBuilder, build


@dataclasses.dataclass
class AudioOnsetsConfig(RealVideoConfig):
    validation_fraction: float = 0.1  # of the videos, by md5 of the file stem
    test_fraction: float = 0.1
    max_lag: int = audio_labels.DEFAULT_MAX_LAG  # frames; the lag estimate is bounded to ±max_lag
    min_agreement: float = audio_labels.DEFAULT_MIN_AGREEMENT  # onset/inflection Pearson r to keep a clip


def split_of(stem: str, validation_fraction: float, test_fraction: float) -> str:
    u = int(hashlib.md5(stem.encode()).hexdigest()[:8], 16) / 2**32
    return "test" if u < test_fraction else "validation" if u < test_fraction + validation_fraction else "train"


class AudioOnsets(RealVideoBuilder):
    """Videos labelled by their soundtrack's onsets (module docstring)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put videos with a soundtrack anywhere under manual_dir. See docs/audio.md."
    BUILDER_CONFIGS = [
        AudioOnsetsConfig(name="paper", description="112×112, native fps, ≤ 300 frames"),
        AudioOnsetsConfig(name="small", description="48×48 (the demo model's input), native fps", image_size=48),
        AudioOnsetsConfig(name="tiny", description="32×32, native fps, ≤ 300 frames", image_size=32),
    ]

    def _extra_features(self) -> dict:
        return {"event_strengths": tfds.features.Tensor(shape=(None,), dtype=np.float32)}

    def _annotations(self, annotations_dir: str):
        del annotations_dir  # the labels are in the videos' own soundtracks
        cfg = self.builder_config
        paths = video_lib.list_video_files(self.manual_dir, recursive=True)
        if not paths:
            raise FileNotFoundError(f"{self.manual_dir}: no video files to take audio labels from")
        labelled = audio_labels.audio_labels_for_videos(
            paths, max_lag=cfg.max_lag, min_agreement=cfg.min_agreement, flow_method=cfg.flow_method
        )
        anomalies = [
            Anomaly("rejected_soundtrack", path, 0, os.path.splitext(os.path.basename(path))[0], reason)
            for path, reason in sorted(labelled.rejected.items())
        ]
        splits: dict[str, list[Item]] = {"train": [], "validation": [], "test": []}
        for path, lab in sorted(labelled.labels.items()):
            stem = os.path.splitext(os.path.basename(path))[0]
            splits[split_of(stem, cfg.validation_fraction, cfg.test_fraction)].append(
                Item(
                    key=stem,
                    video_id=stem,
                    event_frames=tuple(int(f) for f in lab.frames),
                    where=path,
                    extra={"event_strengths": np.asarray(lab.strengths, np.float32)},
                )
            )
        return splits, anomalies, {"audio_labels": labelled.report_json()}

    def _extra_values(self, item: Item, meta: dict) -> dict:
        """Strengths of the stored events: the builder maps events to the stored rate, merges those that land on
        one frame (the strongest wins here) and drops those past the stored video's end."""
        frames = frame_times.output_frames(np.asarray(item.event_frames, np.int64), meta, self.builder_config.fps)
        strengths = np.asarray(item.extra["event_strengths"], np.float32)
        kept = frames < meta["num_frames"]
        stored = np.unique(frames[kept])
        return {"event_strengths": np.array([strengths[kept][frames[kept] == f].max() for f in stored], np.float32)}


def named_builder(name: str, data_dir: str, builder_config: str = "paper", **kwargs) -> AudioOnsets:
    del name
    return make_builder_of(AudioOnsets, builder_config, data_dir, **kwargs)


def make_builder(data_cfg, *, workers: int = 1, runner=None) -> AudioOnsets:
    """The registry's entry point (input_pipeline/registry.py)."""
    return builder_from_config(named_builder, data_cfg, workers=workers, runner=runner)


__all__ = ["AudioOnsets", "AudioOnsetsConfig", "build", "make_builder", "split_of"]
