"""A timing-model candidate measured the way every docs/RESULTS.md §4 candidate since "Quarter turns" was.

A candidate is a training variant of configs/default_detector.py (an augmentation, a sampler, a mixture)
continued for a few hundred steps from the shipped bundle's timing model, then judged against the shipped
model and a *control* (the same steps without the variant) by `ta2net calibrate`'s criterion: both thresholds
re-chosen on the two synthetic renderers' validation folders, the mean of their pooled F1 ±3. The real clips
are scored after, for information; nothing is chosen on them.

    python benchmarks/candidate.py gainA mix_small=0.25,flow_gain=2 --control runs/ctlB_bundle
    # the control itself: python benchmarks/candidate.py ctlB mix_small=0.25
    # the control again with another clip order, also scored on held-out folders (calibrate's --check-on:
    # reported at the chosen thresholds, never tuned on):
    python benchmarks/candidate.py ctlS1 mix_small=0.25 --seed 1 \
      --check-on v2_64_test=data/tfds/raw/synthetic_collisions/v2/test \
      --check-on perspective_test=runs/perspective_heldout/videos

Steps, each skipped when its output is there (so an interrupted run goes on where it stopped; `ta2net train`
resumes from its last checkpoint):
1. ``ta2net train --config configs/default_detector.py:VARIANT --config.train.num_steps=STEPS
   --workdir runs/NAME --init-from BASE``;
2. BASE's detector.json into runs/NAME with its ``locator_timing`` naming BASE's locator: the candidate
   inherits the shipped picking (separation, locator weight, analysis rate), whose thresholds step 4 re-chooses;
3. ``ta2net export --workdir runs/NAME --locator BASE/locator --format bundle --out runs/NAME_bundle``;
4. ``ta2net calibrate --workdir runs/NAME_bundle --tune native,phase --tune-on ...`` (the two folders below);
5. ``ta2net real-benchmark --workdir runs/NAME_bundle --out runs/real_benchmark_NAME``.

Then one table row per model (base, control, candidate) and the rule's verdict: the candidate would ship only
with a criterion at least MIN_GAIN above the base's and the control's (the other conditions docs/RESULTS.md
states per candidate, e.g. the real-clip mean, are printed beside it). The validation folders need
``ta2net build --config configs/default_detector.py:mix_small=0.25`` (v2's raw renders) and
``python benchmarks/perspective_heldout.py --split validation --methods ""`` (the perspective scenes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo root first: benchmarks/input_pipeline.py would shadow the package

from ta2net_jax.evaluation import real_benchmark  # noqa: E402
from ta2net_jax.export import bundle as bundle_lib  # noqa: E402

BASE = "ta2net_jax/detection/default_model"
TUNE_ON = {
    "v2_64_validation": "data/tfds/raw/synthetic_collisions/v2/validation",
    "perspective_validation": "runs/perspective_val/videos",
}
MADE_BY = {
    "v2_64_validation": "ta2net build --config configs/default_detector.py:mix_small=0.25",
    "perspective_validation": 'python benchmarks/perspective_heldout.py --split validation --methods ""',
}
MIN_GAIN = 0.005


def picking_without_calibration(bundle: str) -> dict:
    """``bundle``'s detector.json without what belongs to its own scores: its calibration record and its
    thresholds for other flow estimators (a model that inherits the picking gets its own from calibrate)."""
    tuned = bundle_lib.read_tuned(bundle)
    for own in ("calibration", "thresholds_by_flow"):
        tuned.pop(own, None)
    return tuned


def inherit_picking(base: str, run: str) -> dict:
    """``base``'s detector.json written into ``run`` with ``locator_timing.locator`` naming ``base``'s locator
    (recorded relative to the bundle there), without what belongs to ``base``'s own scores: its calibration
    record (step 4 makes the candidate's) and its thresholds for other flow estimators; returns it."""
    tuned = picking_without_calibration(base)
    timing = tuned.get("locator_timing")
    if timing and timing.get("locator") and not os.path.isabs(timing["locator"]):
        timing["locator"] = os.path.join(base, timing["locator"])
    Path(run, "detector.json").write_text(json.dumps(tuned, indent=1))
    return tuned


def calibrated(bundle: str) -> dict:
    """The thresholds and the tuning folders' F1 ±3 `ta2net calibrate` recorded in ``bundle``'s detector.json,
    and their mean (the criterion)."""
    tuned = bundle_lib.read_tuned(bundle)
    record = tuned.get("calibration")
    if not record:
        raise ValueError(f"{bundle}/detector.json: no calibration record; run ta2net calibrate on it first")
    folders = {n: f["after"]["f1_tol3"] for n, f in record["folders"].items() if f["role"] == "tune"}
    checks = {n: f["after"]["f1_tol3"] for n, f in record["folders"].items() if f["role"] != "tune"}
    thresholds = {"native": tuned["model_threshold"]}
    if tuned.get("analysis_rate"):  # videos of 30 fps or more are scored as phases, with a threshold of their own
        thresholds["phase"] = tuned["analysis_rate"]["threshold"]
    return {
        "thresholds": thresholds,
        "folders": folders,
        "checks": checks,
        "criterion": sum(folders.values()) / len(folders),
    }


def real_means(results_json: str) -> dict:
    """Mean F1 ±3 of the model at its default picking per real set (over its clips), and over the sets."""
    rows = json.loads(Path(results_json).read_text())["methods"]["model"]["rows"]
    groups = real_benchmark.rows_by_set_and_picking(rows)
    means = {
        name: real_benchmark.mean_over_clips(rs, "f1_tol3") for (name, pick), rs in groups.items() if pick == "default"
    }
    return {**means, "mean": sum(means.values()) / len(means)}


def real_benchmark_of(bundle: str) -> str:
    """Where `measure` puts the real-clip results of a bundle runs/NAME_bundle: runs/real_benchmark_NAME."""
    name = Path(bundle).name.removesuffix("_bundle")
    return os.path.join("runs", f"real_benchmark_{name}", "results.json")


def verdict(candidate: float, others: dict[str, float]) -> str:
    bar = max(others.values()) + MIN_GAIN
    return (
        f"criterion {candidate:.3f} against {', '.join(f'{n} {v:.3f}' for n, v in others.items())}: "
        + ("passes" if candidate >= bar else "fails")
        + f" the rule (≥ {bar:.3f})"
    )


def _run(args: list[str]) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=ROOT)


def measure(
    name: str,
    variant: str,
    steps: int,
    base: str,
    cli: list[str],
    seed: int | None = None,
    check_on: dict[str, str] | None = None,
) -> str:
    """Steps 1–5 of the module docstring (``seed``: the training's `config.seed`, i.e. its clip order and
    contrastive sampling; None keeps the config's; ``check_on``: name → labelled folder that calibrate scores
    at the chosen thresholds and records, never tunes on); returns the candidate's bundle."""
    run, bundle = f"runs/{name}", f"runs/{name}_bundle"
    for folder_name, folder in {**TUNE_ON, **(check_on or {})}.items():
        if not (ROOT / folder).is_dir():
            made_by = f"; make it with {MADE_BY[folder_name]}" if folder_name in MADE_BY else ""
            raise FileNotFoundError(f"{folder}: the {folder_name} folder is missing{made_by}")
    if not (ROOT / run / "checkpoints" / str(steps)).is_dir():  # trained to the end (a resumed run goes on)
        seeded = [] if seed is None else [f"--config.seed={seed}"]
        _run([*cli, "train", "--config", f"configs/default_detector.py:{variant}", *seeded,
              f"--config.train.num_steps={steps}", "--workdir", run, "--init-from", base])  # fmt: skip
    if not (ROOT / bundle / "detector.json").exists():
        inherit_picking(str(ROOT / base), str(ROOT / run))
        locator = os.path.join(base, bundle_lib.LOCATOR_DIR)
        _run([*cli, "export", "--workdir", run, "--locator", locator, "--format", "bundle", "--out", bundle])
    return score_bundle(bundle, cli, check_on)


def score_bundle(bundle: str, cli: list[str], check_on: dict[str, str] | None = None) -> str:
    """Steps 4–5 of the module docstring on a ready bundle (a candidate's, or one made otherwise, e.g.
    benchmarks/weight_average.py), each skipped when done; returns ``bundle``."""
    if "calibration" not in bundle_lib.read_tuned(str(ROOT / bundle)):
        tune = [arg for n, f in TUNE_ON.items() for arg in ("--tune-on", f"{n}={f}")]
        check = [arg for n, f in (check_on or {}).items() for arg in ("--check-on", f"{n}={f}")]
        _run([*cli, "calibrate", "--workdir", bundle, "--tune", "native,phase", *tune, *check])
    real = real_benchmark_of(bundle)
    if not (ROOT / real).exists():
        _run([*cli, "real-benchmark", "--workdir", bundle, "--out", os.path.dirname(real)])
    return bundle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="runs/NAME, runs/NAME_bundle, runs/real_benchmark_NAME")
    parser.add_argument("variant", help="configs/default_detector.py arguments, e.g. mix_small=0.25,flow_gain=2")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--base", default=BASE, help="the bundle the candidate starts from and inherits")
    parser.add_argument(
        "--seed", type=int, help="the training's config.seed (clip order, sampling): a repeat with another seed"
    )
    parser.add_argument(
        "--check-on",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a labelled folder scored at the chosen thresholds and reported, never tuned on (e.g. a test split)",
    )
    parser.add_argument("--control", help="a bundle measured the same way without the variant (e.g. runs/ctlB_bundle)")
    args = parser.parse_args(argv)
    cli = [sys.executable, "-m", "ta2net_jax.cli"]
    check_on = dict(spec.split("=", 1) for spec in args.check_on if "=" in spec)
    if len(check_on) != len(args.check_on):
        sys.exit(f"candidate {args.name}: --check-on takes NAME=FOLDER, got {args.check_on}")
    try:
        bundle = measure(args.name, args.variant, args.steps, args.base, cli, args.seed, check_on)
        models = {"base": args.base, **({"control": args.control} if args.control else {}), args.name: bundle}
        figures = {label: calibrated(str(ROOT / path)) for label, path in models.items()}
    except subprocess.CalledProcessError as e:
        sys.exit(f"candidate {args.name}: `ta2net {e.cmd[3]}` stopped (exit {e.returncode}); its message is above")
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"candidate {args.name}: {e}")
    checks = sorted({n for fig in figures.values() for n in fig["checks"]})
    print(f"\n| model | thresholds | {' | '.join(TUNE_ON)} | criterion | {''.join(n + ' | ' for n in checks)}real |")
    print("|---|---|" + "---|" * (len(TUNE_ON) + len(checks)) + "---|---|")
    for label, fig in figures.items():
        real_json = ROOT / real_benchmark_of(models[label])
        real = real_means(str(real_json)) if real_json.exists() else None
        real_text = ", ".join(f"{k} {v:.3f}" for k, v in real.items()) if real else "(docs/RESULTS.md §2)"
        thresholds = " / ".join(f"{v:.3f}" for v in fig["thresholds"].values())
        cells = " | ".join(f"{fig['folders'].get(n, float('nan')):.3f}" for n in TUNE_ON)
        checked = "".join(f"{fig['checks'][n]:.3f} | " if n in fig["checks"] else "– | " for n in checks)
        print(f"| {label} | {thresholds} | {cells} | {fig['criterion']:.3f} | {checked}{real_text} |")
    if not args.control:  # more steps alone move the criterion: without the control there is no verdict
        print(
            "\nno --control: the rule is not judged (the control is this script run without the variant's option, "
            "e.g. `python benchmarks/candidate.py ctlB mix_small=0.25`, then --control runs/ctlB_bundle)"
        )
        return
    others = {label: fig["criterion"] for label, fig in figures.items() if label != args.name}
    print("\n" + verdict(figures[args.name]["criterion"], others))


if __name__ == "__main__":
    main()
