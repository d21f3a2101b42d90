"""`ta2net calibrate` (ta2net_jax/evaluation/calibration.py): thresholds chosen on the mean of per-folder F1."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from ta2net_jax.detection import events as events_lib
from ta2net_jax.evaluation import calibration

PICKING = events_lib.Picking(threshold=0.5, min_separation_s=0.05)


def _video(event_frames, event_score, noise_frames, noise_score, stride, n=60, fps=50.0):
    scores = np.full(n, 0.1)
    scores[list(event_frames)] = event_score
    scores[list(noise_frames)] = noise_score
    return calibration.Scored("v", scores, np.asarray(event_frames), fps, stride)


def test_tune_maximises_the_mean_over_folders_not_the_pooled_f1():
    # Folder "bright": 20 events scoring 0.9 and 20 false peaks at 0.6. Folder "dim" (another renderer): 2 events
    # scoring 0.55. Pooled, the bright folder's peaks outvote the dim one's 2 events (threshold ≥ 0.6: F1 0.95,
    # dim found nothing); the mean over folders lowers it below 0.55: dim F1 1, bright 2/3, mean 0.83 > 0.5.
    bright = [_video([10 + 10 * i for i in range(4)], 0.9, [12 + 10 * i for i in range(4)], 0.6, 2) for _ in range(5)]
    dim = [_video([20], 0.55, [], 0.0, 2), _video([30], 0.55, [], 0.0, 2)]
    folders = {"bright": bright, "dim": dim}
    chosen, curves = calibration.tune(folders, PICKING, {"native": 0.5, "phase": 0.7}, kinds=("phase",))
    assert chosen["phase"] < 0.55
    assert chosen["native"] == 0.5  # not named: unchanged
    f1 = {name: calibration.folder_metrics(vs, PICKING, chosen)["f1_tol3"] for name, vs in folders.items()}
    assert f1 == pytest.approx({"bright": 2 / 3, "dim": 1.0})
    pooled = calibration.folder_metrics(bright + dim, PICKING, chosen)["f1_tol3"]
    assert pooled < calibration.folder_metrics(bright + dim, PICKING, {"native": 0.5, "phase": 0.7})["f1_tol3"]
    assert max(curves["phase"].values()) == pytest.approx(5 / 6)
    # Ties go to the smallest threshold of the equal-scoring ones.
    assert chosen["phase"] == min(t for t, f in curves["phase"].items() if f == max(curves["phase"].values()))


def test_tune_leaves_the_other_kind_alone_and_needs_videos_of_the_kind():
    native = [_video([10, 30], 0.8, [20], 0.6, 1, fps=25.0)]
    chosen, _ = calibration.tune({"a": native}, PICKING, {"native": 0.5, "phase": 0.64}, kinds=("native",))
    assert 0.6 <= chosen["native"] < 0.8 and chosen["phase"] == 0.64
    with pytest.raises(ValueError, match="no phase-scored video"):
        calibration.tune({"a": native}, PICKING, {"native": 0.5, "phase": 0.64}, kinds=("phase",))


def test_folder_specs_and_sidecar_labels(tmp_path):
    assert calibration.parse_folder_spec(f"val={tmp_path}") == calibration.LabelledFolder("val", str(tmp_path))
    assert calibration.parse_folder_spec(str(tmp_path)).name == tmp_path.name
    with pytest.raises(FileNotFoundError, match="no such folder"):
        calibration.parse_folder_spec(f"val={tmp_path / 'missing'}")
    video = tmp_path / "train_00001.mp4"
    with pytest.raises(ValueError, match="no labels"):
        calibration._sidecar_frames(str(video))
    (tmp_path / "train_00001.json").write_text(json.dumps({"events": [{"frame": 4}, {"frame": 9}]}))
    assert calibration._sidecar_frames(str(video)).tolist() == [4, 9]
    (tmp_path / "train_00001.json").write_text(json.dumps({"frames": [4]}))
    with pytest.raises(ValueError, match="train_00001.json: expected"):
        calibration._sidecar_frames(str(video))


def _bundle_and_videos(tmp_path):
    """A copy of the shipped bundle and a folder of a 50 fps video (scored as phases) and a 25 fps one."""
    from input_pipeline import synthetic
    from input_pipeline.video import write_video
    from ta2net_jax.export import bundle

    model = tmp_path / "model"
    shutil.copytree(bundle.packaged_model_dir(), model)
    (model / calibration.BACKUP).unlink(missing_ok=True)  # the shipped bundle was calibrated once already
    folder = tmp_path / "videos"
    folder.mkdir()
    for i, fps in enumerate((50.0, 25.0)):
        video = synthetic.generate_video(i, synthetic.SceneConfig(height=64, width=64, num_frames=48, fps=fps))
        write_video(str(folder / f"clip{i}.mp4"), video.frames, video.fps)
        (folder / f"clip{i}.json").write_text(json.dumps({"events": synthetic.events_to_json(video.events)}))
    return model, folder


def test_calibrate_command_rewrites_detector_json_and_keeps_the_old_one(tmp_path, capsys):
    """End to end on the shipped bundle (a copy): a 50 fps video (scored as phases) and a 25 fps one, labelled
    by sidecar files as the synthetic renders are; both thresholds re-chosen, the record and backup written."""
    from ta2net_jax.cli import main as cli

    model, folder = _bundle_and_videos(tmp_path)
    before = json.load(open(model / "detector.json"))
    args = ["calibrate", "--workdir", str(model), "--tune-on", f"mine={folder}", "--tune", "native,phase"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "native threshold" in out and "phase threshold" in out and "mine" in out
    after = json.load(open(model / "detector.json"))
    assert json.load(open(model / calibration.BACKUP)) == before
    record = after["calibration"]
    assert record["folders"]["mine"]["after"]["videos"] == 2 and record["folders"]["mine"]["after"]["phase_scored"] == 1
    assert after["analysis_rate"]["threshold"] == record["tuned"]["phase"]["after"]
    assert after["model_picking"]["threshold"] == after["model_threshold"] == record["tuned"]["native"]["after"]
    assert record["folders"]["mine"]["after"]["f1_tol3"] >= record["folders"]["mine"]["before"]["f1_tol3"]
    changed = ("calibration", "model_picking", "model_threshold", "analysis_rate")
    assert {k: v for k, v in after.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}
    # A folder without labels: one line naming the video, exit 1, detector.json untouched.
    os.remove(folder / "clip1.json")
    assert cli.main(args) == 1
    assert "clip1.mp4: no labels" in capsys.readouterr().err
    assert json.load(open(model / "detector.json")) == after


def test_calibrate_on_another_flow_stores_its_thresholds_apart_for_detect(tmp_path):
    """`calibrate --flow NAME` for a model trained on another estimator: its thresholds go to
    thresholds_by_flow[NAME] (the run's own untouched), and a detector with that flow, and only that one and
    only the model, picks with them."""
    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection.detect import THRESHOLDS_BY_FLOW, VideoDetector

    model, folder = _bundle_and_videos(tmp_path)
    before = json.load(open(model / "detector.json"))
    args = ["calibrate", "--workdir", str(model), "--tune-on", f"mine={folder}", "--tune", "native,phase"]
    assert cli.main([*args, "--flow", "farneback"]) == 0
    after = json.load(open(model / "detector.json"))
    entry = after[THRESHOLDS_BY_FLOW]["farneback"]
    assert entry["calibration"]["flow"] == "farneback" and set(entry) == {"native", "phase", "calibration"}
    assert entry["native"] == entry["calibration"]["tuned"]["native"]["after"]
    others = {k: v for k, v in after.items() if k != THRESHOLDS_BY_FLOW}
    assert others == {k: v for k, v in before.items() if k != THRESHOLDS_BY_FLOW}  # the run's own: as they were
    for flow, kept in before.get(THRESHOLDS_BY_FLOW, {}).items():  # the shipped tvl1-jax entry: kept
        assert after[THRESHOLDS_BY_FLOW][flow] == kept

    after[THRESHOLDS_BY_FLOW]["farneback"].update(native=0.123, phase=0.456)  # values no tuning would give
    (model / "detector.json").write_text(json.dumps(after))
    farneback = VideoDetector(workdir=str(model), flow_method="farneback")
    assert farneback.picking.threshold == 0.123 and farneback.detector.phase_threshold == 0.456
    own = VideoDetector(workdir=str(model))
    assert own.flow_method == "dis" and own.picking.threshold == before["model_picking"]["threshold"]
    assert own.detector.phase_threshold == before["analysis_rate"]["threshold"]
    assert VideoDetector(method="inflection", flow_method="farneback").picking.threshold != 0.123
    assert VideoDetector(workdir=str(model), flow_method="farneback", threshold=0.3).picking.threshold == 0.3


def test_calibrate_with_tvl1_settings_stores_them_for_detect(tmp_path, capsys):
    """`calibrate --flow tvl1-jax --tvl1 lambda_=0.6`: the videos are scored with that TV-L1 (the fused program
    gets the settings), the settings are stored with the thresholds, and a detector with that flow estimates
    with them unless told otherwise; other flows refuse them, one line, detector.json untouched."""
    from input_pipeline import synthetic
    from input_pipeline.video import write_video
    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection.detect import THRESHOLDS_BY_FLOW, TVL1_OPTIONS, VideoDetector
    from ta2net_jax.export import bundle

    model = tmp_path / "model"
    shutil.copytree(bundle.packaged_model_dir(), model)
    folder = tmp_path / "videos"
    folder.mkdir()
    video = synthetic.generate_video(3, synthetic.SceneConfig(height=32, width=32, num_frames=24, fps=25.0))
    write_video(str(folder / "clip.mp4"), video.frames, video.fps)
    (folder / "clip.json").write_text(json.dumps({"events": synthetic.events_to_json(video.events)}))
    before = json.load(open(model / "detector.json"))
    args = ["calibrate", "--workdir", str(model), "--tune-on", f"mine={folder}", "--tune", "native"]
    assert cli.main([*args, "--flow", "dis", "--tvl1", "lambda_=0.6"]) == 1
    assert "given for flow 'dis', not tvl1-jax" in capsys.readouterr().err
    assert cli.main([*args, "--flow", "tvl1-jax", "--tvl1", "lambda=0.6"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert json.load(open(model / "detector.json")) == before

    settings = ["--tvl1", "lambda_=0.6", "--tvl1", "nscales=2", "--tvl1", "warps=2", "--tvl1", "outer_iterations=2"]
    assert cli.main([*args, "--flow", "tvl1-jax", *settings]) == 0
    entry = json.load(open(model / "detector.json"))[THRESHOLDS_BY_FLOW]["tvl1-jax"]
    wanted = {"lambda_": 0.6, "nscales": 2, "warps": 2, "outer_iterations": 2}
    assert entry[TVL1_OPTIONS] == wanted and entry["calibration"][TVL1_OPTIONS] == wanted
    detector = VideoDetector(workdir=str(model), flow_method="tvl1-jax")
    assert detector.tvl1_options == detector.detector.tvl1_options == wanted
    assert detector.picking.threshold == entry["native"]
    assert VideoDetector(workdir=str(model), flow_method="tvl1-jax", tvl1_options={"lambda_": 0.3}).tvl1_options == {
        "lambda_": 0.3
    }
    assert VideoDetector(workdir=str(model)).tvl1_options is None  # DIS, the run's own
    result = detector(str(folder / "clip.mp4"))
    assert result["flow"] == "tvl1-jax" and result[TVL1_OPTIONS] == wanted and result["fused"]
