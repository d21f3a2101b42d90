"""Loading Python configs by path, with big_vision-style `path.py:arg` variants and overrides."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys

import ml_collections

from input_pipeline import paths


def load_config(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    """Loads `configs/x.py[:arg]` and applies `key.sub=value` overrides (values parsed as Python literals).

    Raises ValueError naming the file or key when the spec or an override is wrong.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such config file")
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if repo_root not in sys.path:  # configs import `configs.common`
        sys.path.insert(0, repo_root)
    module_spec = importlib.util.spec_from_file_location(f"_ta2net_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg or None)
    for item in overrides:
        apply_override(config, item)
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
    node[leaf] = value


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
