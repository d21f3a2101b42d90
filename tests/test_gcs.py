"""`gs://` everywhere, against a real local GCS emulator (tests/gcs_emulator.py). The runs: a tiny training with
`--workdir gs://bucket/run`, killed while committing its second checkpoint (the commit marker never written) and
resumed to the same parameters as an uninterrupted local run; eval, detect and export from the bucket; the tiny
synthetic dataset built into `gs://bucket/tfds` and trained from. Input videos in a bucket: test_gcs_inputs.py.
"""

import json
import os
import signal
import subprocess

from conftest import REPO, assert_bit_identical
from gcs_emulator import BUCKET, TIMEOUT, gcs_env
from reference_run import CONFIG, NUM_STEPS, overrides, read_log, state_at, train_command

from input_pipeline import paths, registry
from ta2net_jax import checkpoint
from ta2net_jax.config_utils import load_config
from ta2net_jax.train import train_and_evaluate


def run_train(data_dir, workdir, env, tmp_path, what):
    cmd = train_command(data_dir, workdir)
    output = tmp_path / f"{what}.txt"
    with open(output, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    return proc.returncode, output.read_text()


def test_paths_layer(emulator):
    """Atomic writes, appends and listings on gs:// (input_pipeline.paths)."""
    base = f"gs://{BUCKET}/paths"
    paths.write_text(paths.join(base, "a", "x.json"), '{"a": 1}')
    assert json.loads(paths.read_text(f"{base}/a/x.json")) == {"a": 1}
    paths.append_line(f"{base}/log.jsonl", "1")
    paths.append_line(f"{base}/log.jsonl", "2")
    assert paths.read_text(f"{base}/log.jsonl") == "1\n2\n"
    assert paths.walk_files(base) == ["a/x.json", "log.jsonl"]
    assert paths.isdir(f"{base}/a") and paths.isfile(f"{base}/a/x.json") and not paths.exists(f"{base}/b")


def test_input_folders_in_a_bucket_are_read_from_a_local_copy(emulator):
    """A gs:// manual_dir (source videos, label files) is downloaded once into the cache and used from there."""
    import ml_collections

    base = f"gs://{BUCKET}/videos"
    paths.write_bytes(f"{base}/a/clip.mp4", b"not really a video")
    paths.write_text(f"{base}/labels.csv", "clip,1\n")
    cfg = ml_collections.ConfigDict({"name": "audio_onsets", "data_dir": "/tmp/x", "manual_dir": base})
    local = registry.local_inputs(cfg)
    assert cfg.manual_dir == base and not paths.is_remote(local.manual_dir)
    assert open(os.path.join(local.manual_dir, "a", "clip.mp4"), "rb").read() == b"not really a video"
    assert open(os.path.join(local.manual_dir, "labels.csv")).read() == "clip,1\n"


def test_prepared_videos_written_to_a_bucket(emulator, tiny_data_dir):
    """`ta2net prepare VIDEO --out gs://…`: prepared in the local cache, uploaded with meta.json last."""
    from ta2net_jax.cli import main as cli

    video = os.path.join(tiny_data_dir, "raw", "synthetic_collisions", "tiny", "test", "test_00001.mp4")
    out = f"gs://{BUCKET}/prepared"
    assert cli.main(["prepare", video, "--out", out, "--size", "32", "--workers", "1"]) == 0
    (tag,) = paths.listdir(out)
    files = paths.walk_files(paths.join(out, tag))
    meta = next(f for f in files if f.endswith("/meta.json"))
    folder = meta[: -len("/meta.json")]
    assert f"{folder}/flow.npz" in files and sum(f.startswith(f"{folder}/frames/") for f in files) == 24
    assert json.loads(paths.read_text(paths.join(out, tag, meta)))["num_frames"] == 24


def test_train_killed_resumed_eval_detect_export_in_a_bucket(emulator, reference, tiny_data_dir, tmp_path):
    workdir = f"gs://{BUCKET}/run"
    # Killed while committing step 4 (every file written, commit_success.txt not yet): SIGKILL after the first
    # checkpoint (step 2).
    env = gcs_env(emulator, **{checkpoint.FAULT_ENV: str(NUM_STEPS)})
    status, text = run_train(tiny_data_dir, workdir, env, tmp_path, "killed")
    assert status == -signal.SIGKILL, text[-3000:]
    torn = paths.join(workdir, "checkpoints", str(NUM_STEPS))
    assert paths.exists(paths.join(torn, "state")) and not paths.exists(paths.join(torn, checkpoint.COMMIT_FILE))
    assert checkpoint.is_complete(paths.join(workdir, "checkpoints", "2"))
    assert not checkpoint.is_complete(torn)

    # Resumed from step 2 to the end: the same parameters as the uninterrupted local run.
    status, text = run_train(tiny_data_dir, workdir, gcs_env(emulator), tmp_path, "resumed")
    assert status == 0, text[-3000:]
    assert f"resumed from checkpoint step 2 ({workdir}/checkpoints)" in text
    assert_bit_identical(state_at(workdir, reference["config"], NUM_STEPS), reference["final"])
    log = read_log(workdir)
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    for mine, ref in zip(log, reference["log"]):
        assert mine["loss"] == ref["loss"]
    assert json.loads(paths.read_text(paths.join(workdir, "config.json")))["train"]["num_steps"] == NUM_STEPS
    events = paths.listdir(paths.join(workdir, "tensorboard"))
    # The killed run's file is there when tensorboardX flushed (every 10 s) before the kill; the resumed one's is.
    assert 1 <= len(events) <= 2 and all(e.startswith("events.out.tfevents.") for e in events)

    # TensorBoard (without TensorFlow: fsspec, hence gcsfs) reads the events back from the bucket.
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(paths.join(workdir, "tensorboard"))
    accumulator.Reload()
    assert {3, 4} <= {e.step for e in accumulator.Scalars("loss")}

    # Eval, detect and export read the run from the bucket and write there.
    from ta2net_jax.cli import main as cli

    assert (
        cli.main(
            ["eval", "--config", CONFIG, "--workdir", workdir] + [f"--config.{o}" for o in overrides(tiny_data_dir)]
        )
        == 0
    )
    result = json.loads(paths.read_text(paths.join(workdir, "eval.json")))
    assert result["checkpoint_step"] == NUM_STEPS and result["num_videos"] == 3
    detector = json.loads(paths.read_text(paths.join(workdir, "detector.json")))
    assert paths.exists(paths.join(workdir, "report.md")) and len(paths.listdir(paths.join(workdir, "eval_plots"))) == 3

    video = os.path.join(tiny_data_dir, "raw", "synthetic_collisions", "tiny", "test", "test_00000.mp4")
    out = f"gs://{BUCKET}/detect/test_00000"
    args = ["detect", video, "--workdir", workdir, "--out", out + ".json", "--csv", out + ".csv"]
    assert cli.main(args + ["--plot", out + ".png"]) == 0
    detected = json.loads(paths.read_text(out + ".json"))
    assert detected["method"] == "model" and detected["threshold"] == detector["model_threshold"]
    assert paths.read_text(out + ".csv").splitlines()[0].startswith("frame,")
    assert paths.read_bytes(out + ".png")[:8] == b"\x89PNG\r\n\x1a\n"

    exported = f"gs://{BUCKET}/export/weights.safetensors"
    assert cli.main(["export", "--workdir", workdir, "--format", "safetensors", "--out", exported]) == 0
    local = tmp_path / "weights.safetensors"
    paths.copy_file(exported, str(local))
    from ta2net_jax.export import weights

    exported_config, flat = weights.read_safetensors(str(local))
    assert exported_config.data.num_frames == 8 and len(flat) > 10


def test_dataset_built_into_a_bucket_and_trained_from(emulator, reference, tmp_path, monkeypatch):
    """`ta2net build` into gs://bucket/tfds (built locally, uploaded), then a fresh machine (empty cache) trains
    from it: the same batches, hence the same losses, as from the local build."""
    data_dir = f"gs://{BUCKET}/tfds"
    config = load_config(CONFIG, overrides(data_dir, num_steps=2, checkpoint_every=100))
    builder = registry.get_builder(config.data, build_if_missing=True, workers=1)
    assert builder.info.splits["train"].num_examples == 6
    version = paths.join(data_dir, "synthetic_collisions", "tiny", str(builder.version))
    names = paths.listdir(version)
    assert "dataset_info.json" in names and "synthetic_collisions-train.array_record-00000-of-00001" in names
    assert "flow-train.f16" in names  # the flow side file travels with the records
    assert paths.exists(paths.join(data_dir, "raw", "synthetic_collisions", "tiny", "test", "test_00000.json"))

    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "fresh_cache"))
    workdir = f"gs://{BUCKET}/run_from_bucket"
    train_and_evaluate(config, workdir, progress=False)
    assert os.path.exists(tmp_path / "fresh_cache" / "gs" / BUCKET / "tfds" / "synthetic_collisions")
    log = read_log(workdir)
    assert [r["step"] for r in log] == [1, 2]
    for mine, ref in zip(log, reference["log"]):
        assert mine["loss"] == ref["loss"]
