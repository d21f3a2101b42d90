"""Input videos and label files in a bucket (tests/gcs_emulator.py): two real Greatest Hits clips and their
audio-onset labels in gs://; `detect`, `eval-videos` and `prepare` (local pool, and Beam when .venv-beam
exists) on the gs:// files, compared with the same commands on the local files; `prepare` + `build` of a config
whose folders are in the bucket; missing and broken gs:// videos named in one line.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, realdata
from gcs_emulator import BUCKET, TIMEOUT, gcs_env
from test_beam import BEAM_OPTIONS, needs_beam

from input_pipeline import paths, video

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


def test_an_unreachable_store_is_one_line_naming_the_object(monkeypatch, capsys):
    """No route to the store (DNS, a firewall; the client's own retries done): the error names the object, not
    only the store's host, as the other input errors do, from the paths layer up to the command line."""
    from ta2net_jax.cli import main as cli

    down = "Cannot connect to host storage.googleapis.com:443 ssl:default [Name or service not known]"

    class Unreachable:
        def __getattr__(self, name):  # every query of epath's Path or of the fsspec file system
            def fails(*args, **kwargs):
                raise ConnectionError(down)

            return fails

    monkeypatch.setattr(paths, "_fs", lambda url: (Unreachable(), url.removeprefix("gs://")))
    monkeypatch.setattr(paths, "path", lambda p: Unreachable())
    url = "gs://bucket/clips/a.mp4"
    for read in (paths.exists, paths.read_bytes, paths.local_copy, video.read_video):
        with pytest.raises(OSError) as raised:
            read(url)
        assert str(raised.value) == f"{url}: object storage error ({down})", read
    assert cli.main(["detect", url, "--method", "inflection"]) == 1
    assert capsys.readouterr().err == f"ta2net: error: {url}: object storage error ({down})\n"
