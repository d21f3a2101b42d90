"""TFDS builders for the repetition-counting evaluation sets RepCount-A and UCFRep (manual download).

    repcount   RepCount-A (`train_with_fps.csv`, `valid_with_fps.csv`, `test_with_fps.csv`; the ESCounts
               copies; `repcount_test_with_fps.csv` is also accepted for the test split)
    ucfrep     UCFRep over UCF101 (`new_train.csv` / `new_val.csv`, or `ucfrep_train.csv` / `ucfrep_val.csv`)

manual_dir holds the videos (`test2021.mp4`, `v_SoccerJuggling_g23_c01.avi`, … anywhere below it, any
container); annotations_dir (default manual_dir) the CSVs, found by name anywhere below it. A split whose
CSV is absent is not built and is named in the report. Parsing: input_pipeline/repcount_csv.py.

Cycles become events: `event_frames` is every cycle start and end (sorted, de-duplicated) — the frames
where one repetition ends and the next begins, i.e. the contacts of the contact actions (UCFRep's
juggling cycles run from contact to contact, so 12 cycles give 13 boundaries = 13 contacts). The counting
target is `count` as annotated. Extra features:
    count         int32        the annotated repetition count
    cycles        [C, 2] int32 (start, end) frame of each cycle at `fps` (clipped to the stored video)
    action        text         canonical action (repcount_csv.ACTION_ALIASES), `action_raw` as in the CSV
    segment       [2] int32    the counted segment (start, end) from the CSV, or (−1, −1) if none
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import frame_times
from input_pipeline.datasets import repcount_csv
from input_pipeline.datasets.audible623 import _find
from input_pipeline.datasets.audible623_csv import Anomaly
from input_pipeline.datasets.real_video_configs import Item, RealVideoConfig, builder_from_config, make_builder_of
from input_pipeline.datasets.real_videos import RealVideoBuilder, build


@dataclasses.dataclass
class CountConfig(RealVideoConfig):
    # (split, candidate file names): the first name found under annotations_dir is read.
    label_files: tuple = ()


def _configs(label_files) -> list[CountConfig]:
    return [
        CountConfig(name="paper", description="112×112, native fps, ≤ 300 frames", label_files=label_files),
        CountConfig(name="tiny", description="32×32, native fps, ≤ 300 frames", image_size=32, label_files=label_files),
    ]


class _CountBase(RealVideoBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the videos anywhere under manual_dir and the annotation CSVs under "
        "annotations_dir (default: manual_dir). See docs/datasets.md."
    )

    def _extra_features(self) -> dict:
        return {
            "count": tfds.features.Scalar(np.int32),
            "cycles": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),
            "action": tfds.features.Text(),
            "action_raw": tfds.features.Text(),
            "segment": tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }

    def _annotations(self, annotations_dir: str):
        anomalies, splits, files, absent = [], {}, {}, {}
        for split, names in self.builder_config.label_files:
            path = None
            for name in names:
                try:
                    path = _find(annotations_dir, name)
                    break
                except FileNotFoundError:
                    continue
            if path is None:
                absent[split] = list(names)
                continue
            files[split] = os.path.abspath(path)
            rows, found = repcount_csv.read_count_csv(path)
            anomalies += found
            splits[split] = [
                Item(
                    key=r.key,
                    video_id=os.path.splitext(os.path.basename(r.name))[0],
                    event_frames=r.boundaries,
                    where=f"{r.file}:{r.line}",
                    extra={
                        "count": np.int32(r.count),
                        "cycles": r.cycles,
                        "action": r.action,
                        "action_raw": r.action_raw,
                        "segment": r.segment,
                        "csv_fps": r.fps,
                    },
                )
                for r in rows
            ]
        if not splits:
            raise FileNotFoundError(
                f"{annotations_dir}: no {self.name} annotation CSV found; looked for "
                + "; ".join(f"{s}: {', '.join(n)}" for s, n in self.builder_config.label_files)
            )
        held = {i.video_id for i in splits.get(self.EVAL_SPLIT, [])}
        for split in list(splits):
            if split != self.EVAL_SPLIT:
                for item in [i for i in splits[split] if i.video_id in held]:
                    file, line = item.where.rsplit(":", 1)
                    anomalies.append(
                        Anomaly(
                            "split_overlap",
                            file,
                            int(line),
                            item.video_id,
                            f"also in {self.EVAL_SPLIT}; removed from {split}",
                        )
                    )
                splits[split] = [i for i in splits[split] if i.video_id not in held]
        return splits, anomalies, {"label_files": files, "label_files_absent": absent}

    def _extra_values(self, item: Item, meta: dict) -> dict:
        extra = dict(item.extra)
        csv_fps = extra.pop("csv_fps")
        file, line = item.where.rsplit(":", 1)
        if csv_fps and abs(csv_fps - meta["native_fps"]) > 0.05 * csv_fps:
            self.report["anomalies"].append(
                dataclasses.asdict(
                    Anomaly(
                        "fps_mismatch",
                        file,
                        int(line),
                        item.key,
                        f"the CSV says {csv_fps:g} fps, the file {meta['native_fps']:.3f}; frames are taken as decoded",
                    )
                )
            )
        n = meta["num_frames"]
        cycles = frame_times.output_frames(
            np.asarray(extra["cycles"], np.int64).reshape(-1, 2), meta, self.builder_config.fps
        )
        if (cycles > n - 1).any():
            self.report["anomalies"].append(
                dataclasses.asdict(
                    Anomaly(
                        "cycle_beyond_video",
                        file,
                        int(line),
                        item.key,
                        f"cycle frames past the last stored frame {n - 1} clipped",
                    )
                )
            )
        extra["cycles"] = np.minimum(cycles, n - 1).astype(np.int32).reshape(-1, 2)
        extra["segment"] = np.asarray(extra["segment"] if extra["segment"] is not None else (-1, -1), np.int32)
        return extra


class Repcount(_CountBase):
    """RepCount-A repetition counting (see module docstring)."""

    name = "repcount"
    EVAL_SPLIT = "test"
    BUILDER_CONFIGS = _configs(
        (
            ("train", ("train_with_fps.csv",)),
            ("validation", ("valid_with_fps.csv",)),
            ("test", ("test_with_fps.csv", "repcount_test_with_fps.csv")),
        )
    )


class Ucfrep(_CountBase):
    """UCFRep repetition counting over UCF101 (see module docstring)."""

    name = "ucfrep"
    EVAL_SPLIT = "validation"
    BUILDER_CONFIGS = _configs(
        (("train", ("new_train.csv", "ucfrep_train.csv")), ("validation", ("new_val.csv", "ucfrep_val.csv")))
    )


BUILDERS = {"repcount": Repcount, "ucfrep": Ucfrep}


def named_builder(
    name: str,
    data_dir: str,
    builder_config: str = "paper",
    **overrides,
) -> _CountBase:
    if overrides.get("label_files") is not None:
        overrides["label_files"] = tuple(
            (s, (n,) if isinstance(n, str) else tuple(n)) for s, n in dict(overrides["label_files"]).items()
        )
    # manual_dir, annotations_dir and workers go through to make_builder_of with the config overrides.
    return make_builder_of(BUILDERS[name], builder_config, data_dir, **overrides)


def build_dataset(name: str, data_dir: str, builder_config: str = "paper", **kwargs) -> _CountBase:
    return build(named_builder(name, data_dir, builder_config, **kwargs))


def make_builder(data_cfg, *, workers: int = 1, runner=None) -> _CountBase:
    """The registry's entry point (input_pipeline/registry.py): the builder a config's `data` section names."""
    return builder_from_config(named_builder, data_cfg, workers=workers, runner=runner)
