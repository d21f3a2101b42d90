"""benchmarks/candidate.py: what a candidate inherits from the bundle it starts from, and how it is judged."""

import json

import pytest
from benchmark_scripts import load_benchmark

candidate = load_benchmark("candidate")


def _bundle(path, criterion_folders, native=0.51, phase=0.52, locator="locator"):
    path.mkdir(parents=True)
    folders = {name: {"role": "tune", "after": {"f1_tol3": f1}} for name, f1 in criterion_folders.items()}
    folders["test"] = {"role": "check", "after": {"f1_tol3": 0.0}}  # check folders are not in the criterion
    tuned = {
        "model_threshold": native,
        "analysis_rate": {"max_fps": 20.0, "threshold": phase},
        "locator_timing": {"locator": locator, "weight": 0.5},
        "calibration": {"folders": folders},
        "thresholds_by_flow": {"tvl1-jax": {"native": 0.4}},
    }
    (path / "detector.json").write_text(json.dumps(tuned))
    return path


def test_inherited_picking_names_the_base_locator_by_its_path(tmp_path):
    base = _bundle(tmp_path / "base", {"a": 0.8})
    run = tmp_path / "run"
    run.mkdir()
    candidate.inherit_picking(str(base), str(run))
    inherited = json.loads((run / "detector.json").read_text())
    assert inherited["locator_timing"] == {"locator": str(base / "locator"), "weight": 0.5}
    assert inherited["model_threshold"] == 0.51 and inherited["analysis_rate"]["threshold"] == 0.52
    # The base's calibration is of its own scores: the candidate gets its own (measure's step 4 looks for one).
    assert "calibration" not in inherited and "thresholds_by_flow" not in inherited
    absolute = _bundle(tmp_path / "abs", {"a": 0.8}, locator="/somewhere/locator")
    candidate.inherit_picking(str(absolute), str(run))
    assert json.loads((run / "detector.json").read_text())["locator_timing"]["locator"] == "/somewhere/locator"


def test_criterion_is_the_mean_of_the_tuning_folders_and_the_rule_asks_a_margin(tmp_path):
    figures = candidate.calibrated(str(_bundle(tmp_path / "b", {"v2": 0.80, "persp": 0.66}, native=0.5, phase=0.49)))
    assert figures["criterion"] == pytest.approx(0.73) and figures["checks"] == {"test": 0.0}
    assert figures["thresholds"] == {"native": 0.5, "phase": 0.49}
    assert "passes" in candidate.verdict(0.7351, {"base": 0.729, "control": 0.73})
    assert "fails" in candidate.verdict(0.7349, {"base": 0.729, "control": 0.73})
    uncalibrated = tmp_path / "u"
    uncalibrated.mkdir()
    (uncalibrated / "detector.json").write_text(json.dumps({"model_threshold": 0.5}))
    with pytest.raises(ValueError, match="no calibration record"):
        candidate.calibrated(str(uncalibrated))


def test_real_means_average_clips_per_set_at_the_default_picking(tmp_path):
    rows = [
        {"set": "gh", "variant": "default", "f1_tol3": 0.8},
        {"set": "gh", "variant": "default", "f1_tol3": 0.6},
        {"set": "gh", "variant": "LOO", "f1_tol3": 0.0},
        {"set": "ucf", "variant": "default", "f1_tol3": 0.5},
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"methods": {"model": {"rows": rows}}}))
    assert candidate.real_means(str(path)) == pytest.approx({"gh": 0.7, "ucf": 0.5, "mean": 0.6})
    assert candidate.real_benchmark_of("runs/gainA_bundle") == "runs/real_benchmark_gainA/results.json"


def test_a_missing_validation_folder_is_named_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(candidate, "ROOT", tmp_path)
    ran = []
    monkeypatch.setattr(candidate, "_run", ran.append)
    with pytest.raises(FileNotFoundError, match="v2_64_validation folder is missing"):
        candidate.measure("x", "mix_small=0.25", 10, candidate.BASE, ["ta2net"])
    for folder in candidate.TUNE_ON.values():
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="nowhere: the test folder is missing$"):
        candidate.measure("x", "mix_small=0.25", 10, candidate.BASE, ["ta2net"], check_on={"test": "nowhere"})
    assert ran == []


def test_a_trained_candidate_is_bundled_calibrated_and_scored_once(tmp_path, monkeypatch):
    """With the training done, measure exports, calibrates (the inherited picking carries no calibration of
    its own) and scores the real clips, each once; a second call finds everything and runs nothing."""
    monkeypatch.setattr(candidate, "ROOT", tmp_path)
    for folder in [*candidate.TUNE_ON.values(), "held_out"]:
        (tmp_path / folder).mkdir(parents=True)
    _bundle(tmp_path / "base", {"v2": 0.8})
    calibrate_args = []
    (tmp_path / "runs" / "c" / "checkpoints" / "10").mkdir(parents=True)
    ran = []

    def fake_run(args):  # what each command leaves behind
        ran.append(args[1])
        if args[1] == "export":
            (tmp_path / "runs" / "c_bundle").mkdir()
            (tmp_path / "runs" / "c_bundle" / "detector.json").write_text(
                (tmp_path / "runs/c/detector.json").read_text()
            )
        elif args[1] == "calibrate":
            calibrate_args.extend(args)
            path = tmp_path / "runs" / "c_bundle" / "detector.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "calibration": {"folders": {}}}))
        elif args[1] == "real-benchmark":
            (tmp_path / "runs" / "real_benchmark_c").mkdir()
            (tmp_path / "runs" / "real_benchmark_c" / "results.json").write_text("{}")

    monkeypatch.setattr(candidate, "_run", fake_run)
    check_on = {"test": "held_out"}
    bundle = candidate.measure("c", "mix_small=0.25", 10, str(tmp_path / "base"), ["ta2net"], check_on=check_on)
    assert bundle == "runs/c_bundle"
    assert ran == ["export", "calibrate", "real-benchmark"]
    # A check folder is scored by the same calibrate call, never tuned on.
    assert calibrate_args[calibrate_args.index("--check-on") + 1] == "test=held_out"
    assert calibrate_args.count("--tune-on") == len(candidate.TUNE_ON)
    candidate.measure("c", "mix_small=0.25", 10, str(tmp_path / "base"), ["ta2net"])
    assert ran == ["export", "calibrate", "real-benchmark"]


def test_a_seed_reaches_the_training_command_only_when_given(tmp_path, monkeypatch):
    monkeypatch.setattr(candidate, "ROOT", tmp_path)
    for folder in candidate.TUNE_ON.values():
        (tmp_path / folder).mkdir(parents=True)
    trained = []

    def stop_after_training(args):  # the command line is all this test needs
        trained.append(args)
        raise RuntimeError("stop")

    monkeypatch.setattr(candidate, "_run", stop_after_training)
    for seed in (None, 3):
        with pytest.raises(RuntimeError):
            candidate.measure("s", "mix_small=0.25", 10, candidate.BASE, ["ta2net"], seed=seed)
    unseeded, seeded = trained
    assert unseeded[1] == "train" and not any(a.startswith("--config.seed") for a in unseeded)
    assert "--config.seed=3" in seeded and seeded[seeded.index("--workdir") + 1] == "runs/s"
