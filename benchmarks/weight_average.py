"""A uniform weight average ("model soup") of timing-model bundles fine-tuned from one model, scored as a candidate.

Members fine-tuned from the same weights (e.g. benchmarks/candidate.py controls repeated with other seeds) sit
in one basin, so the average of their parameters and BatchNorm statistics is itself a model; it may carry to
footage none was tuned on better than any one of them, at the cost of one model's forward pass (unlike an
output ensemble, benchmarks/ensemble.py). The average gets the first member's picking and locator without its
calibration, then `ta2net calibrate` re-chooses its thresholds and `ta2net real-benchmark` scores it, as
benchmarks/candidate.py does for a trained candidate (same folders, same rule).

    python benchmarks/weight_average.py soup runs/ctlS0_bundle runs/ctlS1_bundle runs/ctlS2_bundle \\
      [--check-on v2_64_test=data/tfds/raw/synthetic_collisions/v2/test ...]     # → runs/soup_bundle

Members must share the model config (names, shapes, dtypes); integer tensors must be equal in all of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo root first: benchmarks/input_pipeline.py would shadow the package
sys.path.append(str(ROOT / "benchmarks"))  # last, for candidate.py only

import candidate  # noqa: E402

from ta2net_jax.export import bundle as bundle_lib  # noqa: E402


def average_weights(flats: list[dict[str, np.ndarray]], where: list[str]) -> dict[str, np.ndarray]:
    """The element-wise mean of floating tensors (in float64, stored in each tensor's dtype); integer tensors
    must agree. ValueError naming the member and tensor when names, shapes or integers differ."""
    first = flats[0]
    for flat, name in zip(flats[1:], where[1:]):
        if set(flat) != set(first):
            extra = sorted(set(flat) ^ set(first))[:3]
            raise ValueError(f"{name}: other tensors than {where[0]} ({', '.join(extra)} …): not one model")
        for key, value in flat.items():
            if value.shape != first[key].shape or value.dtype != first[key].dtype:
                raise ValueError(
                    f"{name}: {key} is {value.dtype}{value.shape}, {first[key].dtype}{first[key].shape} in {where[0]}"
                )
    out = {}
    for key, value in first.items():
        stack = [flat[key] for flat in flats]
        if np.issubdtype(value.dtype, np.floating):
            out[key] = np.mean(np.stack(stack).astype(np.float64), axis=0).astype(value.dtype)
        elif all(np.array_equal(value, other) for other in stack[1:]):
            out[key] = value
        else:
            raise ValueError(f"{key}: an integer tensor that differs between members; cannot average it")
    return out


def write_average(members: list[str], out: str) -> None:
    """``out``: a bundle whose weights are the members' mean, with the first member's config, locator and
    picking (its calibration and per-flow thresholds dropped: they were chosen for its own scores)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    weights_of = [str(Path(m, bundle_lib.WEIGHTS_FILE)) for m in members]
    configs = {json.dumps(json.loads(Path(m, "config.json").read_text())["model"], sort_keys=True) for m in members}
    if len(configs) != 1:
        raise ValueError(f"{', '.join(members)}: the members' model configs differ; a weight average needs one model")
    averaged = average_weights([load_file(w) for w in weights_of], weights_of)
    with safe_open(weights_of[0], framework="numpy") as f:
        metadata = dict(f.metadata() or {})
    metadata["averaged_from"] = json.dumps(members)
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(Path(out, bundle_lib.WEIGHTS_FILE)), metadata=metadata)
    shutil.copy(Path(members[0], "config.json"), Path(out, "config.json"))
    locator = Path(members[0], bundle_lib.LOCATOR_DIR)
    if locator.is_dir():
        shutil.copytree(locator, Path(out, bundle_lib.LOCATOR_DIR), dirs_exist_ok=True)
    tuned = candidate.picking_without_calibration(members[0])
    Path(out, "detector.json").write_text(json.dumps(tuned, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="writes runs/NAME_bundle, scored into runs/real_benchmark_NAME")
    parser.add_argument("members", nargs="+", help="bundles fine-tuned from one model")
    parser.add_argument("--check-on", action="append", default=[], metavar="NAME=FOLDER")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        sys.exit("weight_average: give at least two bundles")
    bundle = f"runs/{args.name}_bundle"
    check_on = dict(spec.split("=", 1) for spec in args.check_on)
    cli = [sys.executable, "-m", "ta2net_jax.cli"]
    try:
        if not (ROOT / bundle / bundle_lib.WEIGHTS_FILE).exists():
            write_average([str(ROOT / m) for m in args.members], str(ROOT / bundle))
        candidate.score_bundle(bundle, cli, check_on)
        figures = candidate.calibrated(str(ROOT / bundle))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"weight_average {args.name}: {e}")
    real = candidate.real_means(str(ROOT / candidate.real_benchmark_of(bundle)))
    print(json.dumps({"bundle": bundle, **figures, "real": real}, indent=1))


if __name__ == "__main__":
    main()
