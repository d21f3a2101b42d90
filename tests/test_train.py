"""The real train loop for 2 steps on a 4-device CPU mesh, checkpoint save/restore that resumes on the
same batch with the same parameters, and evaluation end to end (eval.json)."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from conftest import assert_bit_identical

from input_pipeline import pipeline
from ta2net_jax import checkpoint, mesh as mesh_lib
from ta2net_jax.train import create_train_state, train_and_evaluate


def params_of(workdir, config, step):
    mesh = mesh_lib.make_mesh(config.mesh)
    with jax.set_mesh(mesh):
        _, state = create_train_state(config, mesh)
    mngr = checkpoint.manager(workdir, for_training=False)
    restored, _ = checkpoint.restore(mngr, state, step=step)
    mngr.close()
    return restored


def test_two_steps_resume_and_eval(smoke_config, tmp_path):
    assert jax.device_count() == 4
    workdir = str(tmp_path / "run")
    last = train_and_evaluate(smoke_config, workdir, progress=False)
    assert last["step"] == 2 and np.isfinite(last["loss"])
    assert {"focal", "soft_ce", "fb", "tmp", "grad_norm", "clips_per_s", "lr_weight"} <= set(last)
    log = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in log] == [1, 2]
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
    final = params_of(workdir, smoke_config, 2)

    # A run resumed at step 1 starts its input at the batch step 2 consumed: `start_batch` gives what a fresh
    # iterator gives after that many batches, also for another process layout (2 processes' rows of it).
    source = pipeline.data_source(smoke_config.data, "train")
    fresh = iter(pipeline.train_dataset(smoke_config, source))
    next(fresh)
    second_batch = next(fresh)
    resumed_batch = next(iter(pipeline.train_dataset(smoke_config, source, start_batch=1)))
    for k in second_batch:
        np.testing.assert_array_equal(resumed_batch[k], second_batch[k])
    halves = [
        next(iter(pipeline.train_dataset(smoke_config, source, process_index=p, process_count=2, start_batch=1)))
        for p in range(2)
    ]
    for k in second_batch:
        np.testing.assert_array_equal(np.concatenate([h[k] for h in halves]), second_batch[k])

    # Killed after step 1: resuming trains step 2 again and reaches the same parameters.
    shutil.rmtree(os.path.join(workdir, "checkpoints", "2"))
    train_and_evaluate(smoke_config, workdir, progress=False)
    again = params_of(workdir, smoke_config, 2)
    assert_bit_identical(final, again)

    # Evaluation end to end: thresholds from validation, metrics on test, the training-free inflection detector
    # alongside.
    from ta2net_jax.evaluation.evaluate import evaluate

    result = evaluate(smoke_config, workdir, progress=False)
    keys = {
        "split",
        "num_videos",
        "event_f1_tol1",
        "event_f1_tol2",
        "event_f1_tol3",
        "orig_recall_tol3",
        "orig_precision_tol3",
        "orig_f1_tol3",
    }
    assert keys <= set(result) and keys - {"split"} <= set(result["inflection"]) | {"split"}
    assert result["split"] == "test" and result["num_videos"] == 3 and result["tuned_on"] == "validation"
    on_disk = json.load(open(os.path.join(workdir, "eval.json")))
    assert on_disk["event_f1_tol3"] == result["event_f1_tol3"]
    assert os.path.exists(os.path.join(workdir, "detector.json"))
    assert len(os.listdir(os.path.join(workdir, "eval_plots"))) == 3
    # Which exact contacts each detector finds (evaluation/contacts.py): every raw GT event is in one kind and
    # one speed bin, for both detectors.
    found = on_disk["found_by_contact"]
    assert set(found) == {"model", "inflection"}
    total = found["model"]["all"]["events"]
    assert total == found["inflection"]["all"]["events"] > 0
    for detector in found.values():
        assert sum(g["events"] for g in detector["by_kind"].values()) == total
        assert sum(g["events"] for g in detector["by_speed_px"].values()) == total
    assert "Which contacts are found" in open(os.path.join(workdir, "report.md")).read()

    # The trained run detects events in a real clip with its tuned threshold (`ta2net detect --workdir`).
    from conftest import realdata

    from ta2net_jax.cli import main as cli

    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    out = tmp_path / "events.json"
    assert cli.main(["detect", video, "--workdir", workdir, "--out", str(out), "--plot", str(tmp_path / "t.png")]) == 0
    detected = json.load(open(out))
    assert detected["method"] == "model" and detected["num_frames"] == 90
    tuned = json.load(open(os.path.join(workdir, "detector.json")))
    assert detected["threshold"] == tuned["model_threshold"]
    assert detected["picking"] == tuned["model_picking"]  # the whole picking eval tuned with reaches detect
    assert all(0 <= e["x"] <= 604 and 0 <= e["y"] <= 340 for e in detected["events"])

    # A missing split fails before any scoring and names the option; the tuning split may be the reported one
    # (a dataset built with train and validation only), scored once, and eval.json says so.
    smoke_config.eval.split = "holdout"
    with pytest.raises(ValueError, match=r"no split 'holdout' for eval\.split .*--config\.eval\.split=NAME"):
        evaluate(smoke_config, str(tmp_path / "never_read"), progress=False)
    smoke_config.eval.split = "validation"
    on_tuning = evaluate(smoke_config, workdir, progress=False)
    assert on_tuning["split"] == on_tuning["tuned_on"] == "validation" and on_tuning["reported_on_tuning_split"]
    assert on_tuning["event_f1_tol3"] == on_tuning["validation_event_f1_tol3"]
