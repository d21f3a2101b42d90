"""Which datasets exist, and what input a run on each takes: the one place that answers both.

A dataset is a module under `input_pipeline/datasets/` (or anywhere importable) registered here by name.
The module is imported only when the dataset is used (TFDS is heavy; `ta2net info` needs none of it).
It provides:

    make_builder(data_cfg, *, workers) -> tfds builder   the builder a config's `data` section names,
                                                         built or not (reads nothing but its folder)
    build(builder) -> builder                            writes the dataset (idempotent) and its report
    raw_events_json(data_cfg, split, video_id) -> str | None    optional: a video's exact events and
                                                         object boxes (the synthetic generator's JSON),
                                                         for the spatial protocols

The builder's `builder_config` carries `image_size` (frames are S×S) and `flow_method` (the optical-flow
estimator its flow was computed with): `input_spec` reads them, so detect, export, info and prepare take
a run's input from the run's own dataset. Adding a dataset = one module + one `register` call (see
tests/test_registry.py, which registers a toy dataset and trains on it).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import types

from input_pipeline import paths


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    module: str  # dotted path of the module that builds it (imported on first use)
    summary: str  # one line for `--help` texts and docs
    from_videos: bool  # built from a folder of real video files (`ta2net prepare --config` applies)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model trained on a dataset takes: S×S frames, flow from `flow_method`, black borders cropped
    before the resize or not (real videos prepared since dataset 2.1.0 are; synthetic renders have none)."""

    image_size: int  # S, pixels
    flow_method: str  # input_pipeline.flow.METHODS
    crop_borders: bool = True


class UnknownDatasetError(ValueError):
    """A config names a dataset nobody registered."""


class DatasetNotBuiltError(FileNotFoundError):
    """The dataset's files are not there yet (`ta2net build` first)."""


_DATASETS: dict[str, Dataset] = {}


def register(name: str, module: str, summary: str, *, from_videos: bool = False) -> Dataset:
    """Adds (or replaces) a dataset; `module` is the dotted path of its builder module."""
    _DATASETS[name] = Dataset(name, module, summary, from_videos)
    return _DATASETS[name]


def names() -> tuple[str, ...]:
    return tuple(_DATASETS)


def get(name: str) -> Dataset:
    if name not in _DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(_DATASETS)}")
    return _DATASETS[name]


def module_of(data_cfg) -> types.ModuleType:
    return importlib.import_module(get(data_cfg.name).module)


def _runner_kwargs(runner) -> dict:
    """`runner=` for the dataset's make_builder only when it is not the default local pool, so datasets that
    know no runner (a registered toy) keep working; asking one of those for Beam is a TypeError naming it."""
    return {} if runner is None or runner.name == "local" else {"runner": runner}


def make_builder(data_cfg, *, workers: int = 2, runner=None):
    """The TFDS builder a config's `data` section names, built or not; `runner`: prepare.Runner of the
    per-video work (default: the local process pool)."""
    return module_of(data_cfg).make_builder(data_cfg, workers=workers, **_runner_kwargs(runner))


def preparing_builder(data_cfg, *, workers: int = 2, runner=None):
    """The builder `ta2net prepare --config` prepares the source videos with: `gs://` input folders copied to
    this machine first (`local_inputs`), and for a `gs://` data_dir this machine's cache as the data_dir: the
    `ta2net build` that follows on this machine finds the prepared videos there and uploads them with the
    dataset (`remote_builder`)."""
    data_cfg = local_inputs(data_cfg)
    if paths.is_remote(data_cfg.data_dir):
        data_cfg = _with_data_dir(data_cfg, local_cache_dir(data_cfg.data_dir))
    return make_builder(data_cfg, workers=workers, runner=runner)


def get_builder(data_cfg, *, build_if_missing: bool = False, workers: int = 2, runner=None):
    """The built TFDS builder (built first when asked and missing); DatasetNotBuiltError otherwise.

    A `gs://` `data.data_dir` (object storage, `remote_builder`) gives a builder on this machine's local copy.
    """
    data_cfg = local_inputs(data_cfg)
    if paths.is_remote(data_cfg.data_dir):
        return remote_builder(data_cfg, build_if_missing=build_if_missing, workers=workers, runner=runner)
    module = module_of(data_cfg)
    builder = module.make_builder(data_cfg, workers=workers, **_runner_kwargs(runner))
    if build_if_missing:
        return module.build(builder)
    if not builder.is_prepared():
        source = " from data.manual_dir" if get(data_cfg.name).from_videos else ""
        raise DatasetNotBuiltError(
            f"{builder.data_dir}: dataset not built{_older_versions(builder.data_dir)}; "
            f"run `ta2net build --config CONFIG`{source} first"
        )
    return builder


# ---- Datasets in object storage ----------------------------------------------------------------------------

CACHE_ENV = paths.CACHE_ENV


def local_cache_dir(data_dir: str) -> str:
    """This machine's copy of a `gs://` data_dir: `$TA2NET_DATA_CACHE/gs/<bucket>/<path>` (default
    `~/.cache/ta2net/data`; paths.cache_dir, where single remote input files are copied too)."""
    return paths.cache_dir(data_dir)


def _with_data_dir(data_cfg, data_dir: str):
    cfg = data_cfg.copy_and_resolve_references() if hasattr(data_cfg, "copy_and_resolve_references") else data_cfg
    cfg.data_dir = data_dir
    return cfg


INPUT_DIR_KEYS = ("manual_dir", "annotations_dir")
DOWNLOADED_MARKER = ".ta2net_downloaded"


def local_inputs(data_cfg):
    """`data_cfg` with each `gs://` input folder (`manual_dir`, `annotations_dir`: source videos and label
    files, read by decoders and parsers that need local files) replaced by its copy in the local cache,
    downloaded once (a marker file written after the last object)."""
    remote = [k for k in INPUT_DIR_KEYS if data_cfg.get(k) and paths.is_remote(data_cfg.get(k))]
    if not remote:
        return data_cfg
    cfg = _with_data_dir(data_cfg, data_cfg.data_dir)
    for key in remote:
        local = local_cache_dir(data_cfg[key])
        marker = os.path.join(local, DOWNLOADED_MARKER)
        if not os.path.exists(marker):
            paths.download_tree(data_cfg[key], local)
            paths.write_text(marker, "")
        cfg[key] = local
    return cfg


def _info_last(names: list[str]) -> list[str]:
    """The files of a dataset with the dataset_info.json files last: TFDS takes a folder with dataset_info.json
    for a prepared dataset, so a copy interrupted before the end is never taken for one."""
    return sorted(names, key=lambda n: (n.rsplit("/", 1)[-1] == "dataset_info.json", n))


def _older_versions(version_dir: str) -> str:
    """The note for a not-built error when the dataset's folder holds other (older) versions, else ""."""
    parent, this = os.path.split(os.path.normpath(str(version_dir)))
    versions = os.listdir(parent) if os.path.isdir(parent) else []  # not TFDS's `<version>.incomplete…` folders
    others = sorted(v for v in versions if v != this and re.fullmatch(r"\d+\.\d+\.\d+", v))
    if not others:
        return ""
    return f" (found version {', '.join(others)}, which this code does not read: the format changed)"


def remote_builder(data_cfg, *, build_if_missing: bool = False, workers: int = 2, runner=None):
    """A dataset whose `data_dir` is in object storage (`gs://bucket/tfds`).

    TFDS reads and writes its metadata through etils.epath (so `gs://` works), but the ArrayRecord shards are
    written and read by array_record's C++ library, which opens local files only (without TensorFlow's file
    system it fails with "open() failed ... gs://"). So:

    * build: the dataset is built into this machine's cache (`local_cache_dir`), then every file under that
      folder (the dataset's version folder, its build report, the synthetic/prepared videos under `raw/`) is
      uploaded to the same relative path under `data_dir`, `dataset_info.json` last;
    * read: the dataset's version folder is downloaded into the cache once (`dataset_info.json` last, so an
      interrupted download is redone), and the builder on the local copy is returned.
    """
    module = module_of(data_cfg)
    local_dir = local_cache_dir(data_cfg.data_dir)
    local = module.make_builder(_with_data_dir(data_cfg, local_dir), workers=workers, **_runner_kwargs(runner))
    rel = os.path.relpath(str(local.data_dir), local_dir)
    remote_version = paths.join(data_cfg.data_dir, *rel.split(os.sep))
    remote_ready = paths.exists(paths.join(remote_version, "dataset_info.json"))
    if local.is_prepared() and remote_ready:
        return local
    if remote_ready:
        names = _info_last(paths.walk_files(remote_version))
        for name in names:
            paths.copy_file(paths.join(remote_version, name), os.path.join(str(local.data_dir), *name.split("/")))
        return module.make_builder(_with_data_dir(data_cfg, local_dir), workers=workers)
    if not build_if_missing:
        source = " from data.manual_dir" if get(data_cfg.name).from_videos else ""
        raise DatasetNotBuiltError(
            f"{remote_version}: dataset not built; run `ta2net build --config CONFIG`{source} first"
        )
    built = module.build(local)
    names = []
    for root, _, files in os.walk(local_dir):
        names += [os.path.relpath(os.path.join(root, f), local_dir).replace(os.sep, "/") for f in files]
    for name in _info_last(names):
        paths.copy_file(os.path.join(local_dir, *name.split("/")), paths.join(data_cfg.data_dir, name))
    return built


def input_spec(data_cfg) -> InputSpec:
    """The frame size, flow estimator and border crop of a run on this dataset.

    A config that states both `data.image_size` and `data.flow_method` is answered without importing the
    dataset module (machines without TFDS, e.g. the GPU check, run `ta2net info` on such configs); otherwise
    the dataset's builder config is asked, and a stated value must agree with it.
    """
    size, flow = data_cfg.get("image_size"), data_cfg.get("flow_method")
    get(data_cfg.name)
    if size is not None and flow is not None:
        return InputSpec(int(size), str(flow), bool(data_cfg.get("crop_borders", True)))
    built = make_builder(data_cfg, workers=1).builder_config
    if size is not None and int(size) != built.image_size:
        raise ValueError(
            f"data.image_size {size} does not match the {data_cfg.name!r} frames "
            f"({built.image_size}×{built.image_size})"
        )
    return InputSpec(int(built.image_size), str(built.flow_method), bool(getattr(built, "crop_borders", True)))


def raw_events_json(data_cfg, split: str, video_id: str) -> str | None:
    """A video's exact events with object geometry, when its dataset keeps them (synthetic), else None."""
    lookup = getattr(module_of(data_cfg), "raw_events_json", None)
    path = lookup(data_cfg, split, video_id) if lookup else None
    if path and paths.is_remote(path) and paths.exists(path):
        # In object storage: the JSON (and its video, for the map examples) copied into the local cache.
        local_dir = local_cache_dir(data_cfg.data_dir)
        remote_root = str(data_cfg.data_dir).rstrip("/") + "/"
        for suffix in (".json", ".mp4"):
            src = path[: -len(".json")] + suffix
            dst = os.path.join(local_dir, *src[len(remote_root) :].split("/"))
            if not os.path.exists(dst) and paths.exists(src):
                paths.copy_file(src, dst)
        path = os.path.join(local_dir, *path[len(remote_root) :].split("/"))
    return path if path and os.path.exists(path) else None


register(
    "synthetic_collisions",
    "input_pipeline.datasets.synthetic_collisions",
    "rendered 2-D collision videos with exact events and exact flow (no download)",
)
for _name, _summary in (
    ("audible623", "Audible623: UCF101 + Kinetics clips with audible-frame labels"),
    ("ucf101_audible", "Audible623's UCF101 videos (the UCF101 protocol)"),
    ("kinetics_audible", "Audible623's Kinetics/YouTube videos (the Kinetics protocol)"),
):
    register(_name, "input_pipeline.datasets.audible623", _summary, from_videos=True)
register(
    "repcount",
    "input_pipeline.datasets.repcount",
    "RepCount-A repetition counting (cycle annotations)",
    from_videos=True,
)
register(
    "audio_onsets",
    "input_pipeline.datasets.audio_onsets",
    "any folder of videos with sound, labelled by its audio onsets (docs/audio.md)",
    from_videos=True,
)
register(
    "ucfrep", "input_pipeline.datasets.repcount", "UCFRep repetition counting (cycle annotations)", from_videos=True
)
