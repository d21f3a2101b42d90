"""Loading Python configs by path, with big_vision-style `path.py:arg` variants and overrides."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import sys

import ml_collections

from input_pipeline import paths


def packaged_configs_dir() -> str | None:
    """The folder of the `configs` package installed with ta2net-jax (the checkout's own in a development
    install), or None."""
    found = importlib.util.find_spec("configs")
    locations = list(found.submodule_search_locations or []) if found else []
    return locations[0] if locations else None


def config_path(path: str) -> str:
    """`path` when it is a file; else, for `configs/NAME.py` (how every command in the docs names a config), the
    installed package's NAME.py, so the documented commands work from any folder after `pip install`.

    Raises ValueError naming the path and the configs there are when neither exists.
    """
    if os.path.isfile(path):
        return path
    folder, name = os.path.split(os.path.normpath(path))
    packaged = packaged_configs_dir()
    if folder == "configs" and packaged and os.path.isfile(os.path.join(packaged, name)):
        return os.path.join(packaged, name)
    if not packaged:
        raise ValueError(f"{path}: no such config file")
    known = sorted(f for f in os.listdir(packaged) if f.endswith(".py") and f not in ("__init__.py", "common.py"))
    raise ValueError(f"{path}: no such config file (the installed ones: configs/{', configs/'.join(known)})")


def load_config(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    """Loads `configs/x.py[:arg]` (a file, or one of the installed package's configs: `config_path`) and applies
    `key.sub=value` overrides (values parsed as Python literals).

    Raises ValueError naming the file or key when the spec or an override is wrong.
    """
    path, _, arg = spec.partition(":")
    path = config_path(path)
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if repo_root not in sys.path:  # configs import `configs.common`
        sys.path.insert(0, repo_root)
    module_spec = importlib.util.spec_from_file_location(f"_ta2net_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg or None)
    for item in overrides:
        apply_override(config, item)
    validate(config)
    return config


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
    """Applies one `a.b.c=value` override in place."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ValueError(f"override {item!r} is not of the form key=value")
    *parents, leaf = key.split(".")
    node = config
    for name in parents:
        if name not in node:
            raise ValueError(f"override {item!r}: unknown config key {key!r}")
        node = node[name]
    if leaf not in node:
        raise ValueError(f"override {item!r}: unknown config key {key!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # bare strings: --config.data.builder_config=tiny
    current = node[leaf]
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, str) and not isinstance(value, str):
        value = raw  # a string field given something that parses as a literal: --config.data.data_dir=2024
    expected = _kind(current)
    if expected and not isinstance(value, expected[0]) or (expected and isinstance(value, bool) != expected[2]):
        raise ValueError(f"--config.{key}={raw}: {key} must be {expected[1]}, not {raw!r}")
    try:
        node[leaf] = value
    except TypeError as err:  # ml_collections' own type check
        raise ValueError(f"--config.{key}={raw}: {key} must be of type {type(current).__name__} ({err})") from None


def _kind(current) -> tuple | None:
    """(accepted types, description, is bool) of a config field's current value; None: anything goes."""
    if isinstance(current, bool):
        return (bool,), "True or False", True
    if isinstance(current, int):
        return (int,), "an integer", False
    if isinstance(current, float):
        return (int, float), "a number", False
    return None


# Ranges of the options every command relies on: (key, test, what is allowed). Checked by `validate`.
_RANGES = (
    ("train.batch_size", lambda v: v >= 1, "an integer ≥ 1"),
    ("train.num_steps", lambda v: v >= 1, "an integer ≥ 1"),
    ("train.log_every", lambda v: v >= 1, "an integer ≥ 1"),
    ("train.checkpoint_every", lambda v: v >= 1, "an integer ≥ 1"),
    ("train.max_to_keep", lambda v: v >= 1, "an integer ≥ 1"),
    ("train.keep_best", lambda v: v >= 0, "an integer ≥ 0"),
    ("train.eval_every", lambda v: v >= 0, "an integer ≥ 0"),
    ("train.eval_max_videos", lambda v: v >= 0, "an integer ≥ 0"),
    ("optim.base_lr", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("optim.warmup_steps", lambda v: v >= 0, "an integer ≥ 0"),
    ("optim.grad_clip_norm", lambda v: math.isfinite(v) and v >= 0, "a finite number ≥ 0"),
    ("optim.ema_decay", lambda v: 0 <= v < 1, "a number in [0, 1) (0: no moving average)"),
    ("data.num_frames", lambda v: v >= 2, "an integer ≥ 2"),
    ("eval.batch_size", lambda v: v >= 1, "an integer ≥ 1"),
)


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks the types and ranges of the options in `_RANGES` that the config has; raises ValueError
    naming the key, the value and what is allowed. Called before a command writes anything."""
    for key, ok, allowed in _RANGES:
        node = config
        for name in key.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or name not in node:
                node = None
                break
            node = node[name]
        if node is None:
            continue
        numeric = isinstance(node, (int, float)) and not isinstance(node, bool)
        integer = "integer" in allowed
        if not numeric or (integer and not isinstance(node, int)) or not ok(node):
            raise ValueError(f"config {key} = {node!r}: must be {allowed}")


def save_config(config: ml_collections.ConfigDict, path: str) -> None:
    """Writes the config as JSON, atomically (local path or `gs://`, input_pipeline.paths)."""
    paths.write_text(path, config.to_json_best_effort(indent=2, sort_keys=True))


def config_from_json(path: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(paths.read_text(path)))


def run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run was trained (or imported) with: `<workdir>/config.json`."""
    path = paths.join(workdir, "config.json")
    if not paths.exists(path):
        raise FileNotFoundError(
            f"{path}: not found; is {workdir} a training workdir (`ta2net train` or `ta2net import-torch`)?"
        )
    return config_from_json(path)
