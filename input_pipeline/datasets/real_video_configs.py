"""The configs of the real-video builders (audible623.py, repcount.py, audio_onsets.py): the `Item` one example is
built from, the builder config (size, frame cap, fps, flow), derived configs with their own dataset folder, and
how a run config's `data` section becomes a builder (`builder_from_config`). The building itself is in
real_videos.py."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import tensorflow_datasets as tfds

from input_pipeline import prepare as prepare_lib


@dataclasses.dataclass
class Item:
    """One example to build. event_frames: native-fps frame indices (cleaned)."""

    key: str
    video_id: str
    event_frames: tuple[int, ...]
    where: str  # "file:line" of its annotation, for the report
    extra: dict = dataclasses.field(default_factory=dict)  # builder-specific feature values
    segment: tuple[int, int] | None = None


@dataclasses.dataclass
class RealVideoConfig(tfds.core.BuilderConfig):
    image_size: int = 112  # output H = W (the original resizes to 112×112)
    max_frames: int | None = 300  # the original's max_len
    fps: float | None = None  # None: native frame rate (the original)
    flow_method: str = "dis"
    jpeg_quality: int = 95
    crop_borders: bool = True  # static black borders cropped before the resize, as `ta2net detect` does

    def prepare_options(self) -> prepare_lib.PrepareOptions:
        return prepare_lib.PrepareOptions(
            self.image_size, self.flow_method, self.fps, self.max_frames, self.jpeg_quality, self.crop_borders
        )


def derive_config(base: RealVideoConfig, **overrides) -> RealVideoConfig:
    """`base` with overrides; a changed value becomes part of the config name (its own dataset folder)."""
    changed = {k: v for k, v in overrides.items() if v is not None and getattr(base, k) != v}
    if not changed:
        return base
    for k in changed:
        if k not in {f.name for f in dataclasses.fields(base)}:
            raise ValueError(f"unknown builder option {k!r} for {base.name!r}")
    suffix = "_".join(
        f"{k}-{'-'.join(map(str, v)) if isinstance(v, (tuple, list)) else v}" for k, v in sorted(changed.items())
    )
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "", f"{base.name}_{suffix}")
    if len(name) > 80:  # long class lists: keep the folder name short but unique
        name = f"{base.name}_{hashlib.md5(suffix.encode()).hexdigest()[:10]}"
    return dataclasses.replace(base, name=name, description=f"{base.description}; {suffix}", **changed)


def make_builder_of(
    cls,
    builder_config: str,
    data_dir: str,
    *,
    manual_dir: str | None = None,
    annotations_dir: str | None = None,
    workers: int = 1,
    runner: prepare_lib.Runner | None = None,
    **overrides,
):
    """An instance of builder class `cls` at one of its named configs, with option overrides."""
    base = {c.name: c for c in cls.BUILDER_CONFIGS}
    if builder_config not in base:
        raise ValueError(f"unknown {cls.name} config {builder_config!r}; known: {sorted(base)}")
    config = derive_config(base[builder_config], **overrides)
    return cls(
        config=config,
        data_dir=data_dir,
        file_format="array_record",
        manual_dir=manual_dir,
        annotations_dir=annotations_dir,
        workers=workers,
        runner=runner,
    )


# Options of the real-video builder configs that a config's `data` section may set.
CONFIG_OPTIONS = (
    "image_size",
    "max_frames",
    "fps",
    "flow_method",
    "jpeg_quality",
    "crop_borders",
    "validation_fraction",
    "classes",
    "sources",
    "label_files",
    "test_fraction",
    "max_lag",
    "min_agreement",
)


def builder_from_config(named_builder, data_cfg, *, workers: int = 1, runner: prepare_lib.Runner | None = None):
    """`named_builder(name, data_dir, builder_config, ...)` called with what a config's `data` section states:
    data_dir, builder_config (default "paper"), manual_dir, annotations_dir and the CONFIG_OPTIONS it sets
    (0 for fps / max_frames means "native rate" / "no cap")."""
    overrides = {
        k: (v.to_dict() if hasattr(v, "to_dict") else v) for k in CONFIG_OPTIONS if (v := data_cfg.get(k)) is not None
    }
    for k in ("fps", "max_frames"):
        if overrides.get(k) == 0:
            overrides[k] = None if k == "fps" else 10**9  # None would mean "unchanged" to derive_config
    path = lambda key: os.path.abspath(data_cfg[key]) if data_cfg.get(key) else None  # noqa: E731
    return named_builder(
        data_cfg.name,
        os.path.abspath(data_cfg.data_dir),
        data_cfg.get("builder_config") or "paper",
        manual_dir=path("manual_dir"),
        annotations_dir=path("annotations_dir"),
        workers=workers,
        runner=runner,
        **overrides,
    )
