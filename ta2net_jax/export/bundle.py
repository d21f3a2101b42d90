"""Model bundles: a trained model as three small files that `detect`, `eval-videos`, `export` and
`train --init-from` take wherever they take a training workdir.

    <folder>/model.safetensors   parameters and BatchNorm statistics (the safetensors export, config in its
                                 metadata)
    <folder>/config.json         the run's config (as in a workdir)
    <folder>/detector.json       what `ta2net eval` tuned on validation (picking per detector, map polarity)

    <folder>/locator/            optional: a second bundle (`export --locator RUN`) whose source map and
                                 centroid settings replace the main model's for the (x, y) of events and
                                 the maps; the timing stays the main model's unless the main detector.json
                                 has `locator_timing` (`ta2net eval --locator RUN`): then it is
                                 (1 − w)·P_model + w·P_locator, the picking tuned on that blend

`ta2net export --workdir RUN --format bundle --out FOLDER [--locator RUN2]` writes one. The default detector
that ships inside the package (`ta2net detect VIDEO` without `--workdir`) is the bundle in
`ta2net_jax/detection/default_model/` (docs/default_model.md says how it was trained and what it scores).
"""

from __future__ import annotations

import json
import os

from input_pipeline import paths

WEIGHTS_FILE = "model.safetensors"
LOCATOR_DIR = "locator"
PACKAGED_MODEL_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "detection", "default_model"
)


def is_bundle(folder: str | None) -> bool:
    """True when `folder` holds a bundle's weights (and so is not a training workdir's checkpoints)."""
    return bool(folder) and paths.exists(paths.join(folder, WEIGHTS_FILE))


def read_tuned(folder: str | None) -> dict:
    """A run's or bundle's detector.json (what `ta2net eval` tuned), {} when it has none."""
    path = paths.join(folder, "detector.json") if folder else None
    return json.loads(paths.read_text(path)) if path and paths.exists(path) else {}


def locator_dir(folder: str | None) -> str | None:
    """The bundle's locator folder (a bundle itself), or None when it has none."""
    path = paths.join(folder, LOCATOR_DIR) if folder else None
    return path if path and is_bundle(path) else None


def timing_locator_dir(workdir: str, tuned: dict) -> str | None:
    """The locator a run's detection uses: its bundle's `locator/` folder, else the run that `ta2net eval
    --locator` blended into the timing (`tuned["locator_timing"]`, from detector.json), else None. Raises
    FileNotFoundError, naming the run, when the picking was tuned on a blend whose locator is gone."""
    folder = locator_dir(workdir)
    locator_timing = tuned.get("locator_timing") or {}
    if folder is None and locator_timing.get("weight", 0) > 0:
        folder = locator_timing.get("locator")
        if folder and not (os.path.isabs(folder) or paths.is_remote(folder)):
            folder = paths.join(workdir, folder)  # a bundle names its own locator/ relatively
        if not folder or not paths.exists(paths.join(folder, "config.json")):
            raise FileNotFoundError(
                f"{workdir}/detector.json: its picking was tuned on the timing blended with the locator "
                f"{folder!r}, which is not there; re-run `ta2net eval` without --locator, or with the locator's "
                "new place"
            )
    return folder


def point_timing_at_own_locator(folder: str) -> None:
    """In a bundle's detector.json, the timing blend (`locator_timing`) names the bundle's own `locator/`
    (relative to the bundle) instead of the run it was tuned with, whose path means nothing elsewhere."""
    tuned = read_tuned(folder)
    if tuned.get("locator_timing"):
        tuned["locator_timing"]["locator"] = LOCATOR_DIR
        paths.write_text(paths.join(folder, "detector.json"), json.dumps(tuned, indent=2, sort_keys=True))


def check_locator_input(model_config, locator_config, where: str) -> None:
    """A locator must take the input of the model it belongs to (frames and flow are made once, for both)."""
    from input_pipeline import registry

    ours, theirs = registry.input_spec(model_config.data), registry.input_spec(locator_config.data)
    if ours != theirs:
        raise ValueError(f"{where}: the locator takes {theirs}, the model it belongs to {ours}; they must agree")


def packaged_model_dir() -> str | None:
    """The shipped default model's folder, or None when this install has none."""
    return PACKAGED_MODEL_DIR if is_bundle(PACKAGED_MODEL_DIR) else None


def write_bundle(model, config, step: int, workdir: str, out_dir: str) -> dict:
    """Writes `model` (eval mode) with `config` and the workdir's detector.json into the folder `out_dir`."""
    from ta2net_jax.export import weights

    paths.makedirs(out_dir)
    with paths.written_locally(paths.join(out_dir, WEIGHTS_FILE)) as local:
        weights.write_safetensors(model, config, step, local)
    paths.write_text(paths.join(out_dir, "config.json"), config.to_json_best_effort(sort_keys=True, indent=2))
    tuned = read_tuned(workdir)
    paths.write_text(paths.join(out_dir, "detector.json"), json.dumps(tuned, indent=2, sort_keys=True))
    return {"files": [WEIGHTS_FILE, "config.json", "detector.json"], "tuned": sorted(tuned)}


def load_model(config, folder: str):
    """(model in eval mode, step) from a bundle; the weights must match `config`'s model (names, shapes)."""
    from safetensors import safe_open

    from ta2net_jax.export import weights
    from ta2net_jax.model import build_model

    path = paths.join(folder, WEIGHTS_FILE)
    with paths.read_locally(path) as local:
        _, flat = weights.read_safetensors(local)
        with safe_open(local, framework="numpy") as f:
            step = (f.metadata() or {}).get("step")
    model = build_model(config)
    weights.load_flat_state(model, flat, source=path)
    model.eval()
    return model, int(step) if step and step.isdigit() else None
