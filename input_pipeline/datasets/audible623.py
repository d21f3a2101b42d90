"""TFDS builders for Audible623 and its UCF101 / Kinetics protocols (manual download; ArrayRecord).

    audible623        the official data_train.csv / data_eval.csv over all 623 videos
    ucf101_audible    the same label format over UCF101 videos (`v_<Action>_gXX_cYY`)
    kinetics_audible  the same label format over Kinetics / YouTube videos (11-character ids)

manual_dir: the user's videos, in any layout: the original's `<root>/<class>/<video_id>.mp4`, UCF101's
`UCF-101/<Action>/v_*.avi`, Kinetics' `<split>/<class>/<id>_<start>_<end>.mp4`, or flat; any container.
annotations_dir (default: manual_dir): where the label CSVs are; found by name anywhere below it.
The UCF101 / Kinetics protocols read Audible623's CSVs by default, keep the rows of their source and class
list (`classes`, canonical names; Audible623's lists by default), and accept the user's own CSVs in the
same format through `label_files`.

Splits: `train` and `validation` from the training CSV (the validation split is a fixed fraction of video
ids chosen by md5(video_id); 0 keeps every training row in `train`, as the original), `test` from the
evaluation CSV. Label cleaning: input_pipeline/audible623_csv.py. Extra features:
    class        text   canonical class name (audible623_csv.CLASS_ALIASES)
    class_raw    text   the CSV's class string
    sound_label  text   the CSV's sound_label string, unchanged
    source       text   "ucf101" or "youtube"
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import tensorflow_datasets as tfds

from input_pipeline.datasets import audible623_csv as csv_lib
from input_pipeline.datasets.real_video_configs import Item, RealVideoConfig, builder_from_config, make_builder_of
from input_pipeline.datasets.real_videos import RealVideoBuilder, build

UCF101_CLASSES = (
    "soccer_juggling",
    "tennis_swing",
    "golf_swing",
    "boxing_punching_bag",
    "cricket_shot",
    "cutting_slicing",
    "drumming",
)
KINETICS_CLASSES = (
    "hammer",
    "juggling",
    "pingpong",
    "tennis",
    "bouncing",
    "tapping",
    "battlerope",
    "clapping",
    "drumming",
    "boxing_punching_bag",
    "cymbal",
    "triangle",
    "cutting_slicing",
)
OFFICIAL_LABEL_FILES = (("train", "data_train.csv"), ("test", "data_eval.csv"))


@dataclasses.dataclass
class AudibleConfig(RealVideoConfig):
    validation_fraction: float = 0.1  # of training video ids, held out for threshold tuning
    sources: tuple = ("ucf101", "youtube")  # which rows: UCF101 ids, YouTube ids
    classes: tuple | None = None  # canonical class names to keep; None: all
    label_files: tuple = OFFICIAL_LABEL_FILES  # (split, file name) pairs, found under annotations_dir


def _configs(**kw) -> dict[str, AudibleConfig]:
    return {
        # The paper's input: 112×112, native fps, first 300 frames, DIS flow.
        "paper": AudibleConfig(name="paper", description="112×112, native fps, ≤ 300 frames", **kw),
        # For tests and quick looks: 32×32.
        "tiny": AudibleConfig(name="tiny", description="32×32, native fps, ≤ 300 frames", image_size=32, **kw),
    }


def _find(root: str, name: str) -> str:
    """`name` directly in root, else the first match anywhere below it (sorted walk)."""
    if os.path.isfile(os.path.join(root, name)):
        return os.path.join(root, name)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        if name in names:
            return os.path.join(folder, name)
    raise FileNotFoundError(
        f"{os.path.join(root, name)}: label file not found (looked anywhere under {root}); "
        "pass annotations_dir / data.annotations_dir"
    )


def is_validation(video_id: str, fraction: float) -> bool:
    """Deterministic held-out choice: md5 of the id, so repeated ids fall on the same side."""
    return int(hashlib.md5(video_id.encode()).hexdigest()[:8], 16) / 2**32 < fraction


class _AudibleBase(RealVideoBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the videos anywhere under manual_dir (any layout, any container) and data_train.csv / "
        "data_eval.csv under annotations_dir (default: manual_dir). See docs/datasets.md."
    )

    def _extra_features(self) -> dict:
        return {
            "class": tfds.features.Text(),
            "class_raw": tfds.features.Text(),
            "sound_label": tfds.features.Text(),
            "source": tfds.features.Text(),
        }

    def _annotations(self, annotations_dir: str):
        cfg = self.builder_config
        anomalies, rows_by_split, files = [], {}, {}
        for split, name in cfg.label_files:
            path = _find(annotations_dir, name)
            files[split] = os.path.abspath(path)
            rows, found = csv_lib.read_label_csv(path, max_frames=cfg.max_frames or 10**9)
            rows_by_split[split] = rows
            anomalies += found
        rows_by_split, overlap = csv_lib.resolve_split_overlap(rows_by_split, self.EVAL_SPLIT)
        anomalies += overlap
        filtered: dict[str, int] = {}
        splits: dict[str, list[Item]] = {}
        for split, rows in rows_by_split.items():
            for row in rows:
                if row.source not in cfg.sources or (cfg.classes is not None and row.class_name not in cfg.classes):
                    reason = row.source if row.source not in cfg.sources else row.class_name
                    filtered[reason] = filtered.get(reason, 0) + 1
                    continue
                target = split
                if (
                    split == "train"
                    and cfg.validation_fraction > 0
                    and is_validation(row.video_id, cfg.validation_fraction)
                ):
                    target = "validation"
                splits.setdefault(target, []).append(
                    Item(
                        key=row.key,
                        video_id=row.video_id,
                        event_frames=row.frames,
                        where=f"{row.file}:{row.line}",
                        segment=row.segment,
                        extra={
                            "class": row.class_name,
                            "class_raw": row.class_raw,
                            "sound_label": row.sound_label_raw,
                            "source": row.source,
                        },
                    )
                )
        for split in [s for s, _ in cfg.label_files] + (["validation"] if cfg.validation_fraction > 0 else []):
            splits.setdefault(split, [])
        extras = {
            "label_files": files,
            "rows_filtered_out": filtered,
            "selection": {
                "sources": list(cfg.sources),
                "classes": None if cfg.classes is None else list(cfg.classes),
                "validation_fraction": cfg.validation_fraction,
            },
        }
        return splits, anomalies, extras


class Audible623(_AudibleBase):
    """Audible623: audible-action frames over 623 Kinetics/UCF101 videos (see module docstring)."""

    BUILDER_CONFIGS = list(_configs().values())


class Ucf101Audible(_AudibleBase):
    """The UCF101 protocol: Audible623-format labels over UCF101 videos (see module docstring)."""

    BUILDER_CONFIGS = list(_configs(sources=("ucf101",), classes=UCF101_CLASSES).values())


class KineticsAudible(_AudibleBase):
    """The Kinetics protocol: Audible623-format labels over Kinetics/YouTube videos (see module docstring)."""

    BUILDER_CONFIGS = list(_configs(sources=("youtube",), classes=KINETICS_CLASSES).values())


BUILDERS = {"audible623": Audible623, "ucf101_audible": Ucf101Audible, "kinetics_audible": KineticsAudible}


def named_builder(
    name: str,
    data_dir: str,
    builder_config: str = "paper",
    **overrides,
) -> _AudibleBase:
    """A builder of one of BUILDERS with config overrides (image_size, fps, flow_method, classes, ...)."""
    if overrides.get("classes") is not None:
        overrides["classes"] = tuple(overrides["classes"])
    if overrides.get("label_files") is not None:
        overrides["label_files"] = tuple(tuple(p) for p in dict(overrides["label_files"]).items())
    # manual_dir, annotations_dir and workers go through to make_builder_of with the config overrides.
    return make_builder_of(BUILDERS[name], builder_config, data_dir, **overrides)


def build_dataset(name: str, data_dir: str, builder_config: str = "paper", **kwargs) -> _AudibleBase:
    return build(named_builder(name, data_dir, builder_config, **kwargs))


def make_builder(data_cfg, *, workers: int = 1, runner=None) -> _AudibleBase:
    """The registry's entry point (input_pipeline/registry.py): the builder a config's `data` section names."""
    return builder_from_config(named_builder, data_cfg, workers=workers, runner=runner)
