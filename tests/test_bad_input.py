"""Bad input (issue 13): every case exits non-zero (or warns) with one line on stderr naming the thing at
fault, no traceback, and no partial or overwritten output. Corrupt checkpoints: test_corrupt_checkpoints.py.
"""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from input_pipeline import labels as labels_lib
from ta2net_jax.cli import main as cli

SMOKE = os.path.join(REPO, "configs", "synthetic_small.py:smoke")


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("ta2net: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """a.mp4 and a.avi (different videos, the same stem) in one folder."""
    from input_pipeline import synthetic, video

    folder = tmp_path_factory.mktemp("clips")
    for seed, name in ((1, "a.mp4"), (2, "a.avi")):
        clip = synthetic.generate_video(seed, synthetic.SceneConfig(height=32, width=32, num_frames=24))
        video.write_video(str(folder / name), clip.frames, clip.fps)
    return folder


# ---- Configs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.batch_size=abc", "train.batch_size"),
        ("optim.base_lr=fast", "optim.base_lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.num_steps=-5", "train.num_steps"),
        ("optim.base_lr=0", "optim.base_lr"),
        ("optim.ema_decay=1.5", "optim.ema_decay"),
        ("train.async_checkpoints=3", "train.async_checkpoints"),
    ],
)
def test_bad_config_values_one_line_nothing_written(override, key, tmp_path, capsys):
    workdir = tmp_path / "run"
    status = cli.main(["train", "--config", SMOKE, "--workdir", str(workdir), f"--config.{override}"])
    assert status == 1
    line = _one_error_line(capsys, key, override.split("=", 1)[1])
    assert "must be" in line
    assert not workdir.exists()


def test_workdir_that_is_a_file(tmp_path, capsys):
    workdir = tmp_path / "run"
    workdir.write_text("not a folder")
    status = cli.main(["train", "--config", SMOKE, "--workdir", str(workdir)])
    assert status == 1
    _one_error_line(capsys, str(workdir), "is a file")
    assert workdir.read_text() == "not a folder"


def test_debug_flag_shows_the_traceback(tmp_path):
    cmd = [sys.executable, "-m", "ta2net_jax.cli", "train", "--config", SMOKE, "--workdir", str(tmp_path / "w")]
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    plain = subprocess.run([*cmd, "--config.train.batch_size=abc"], capture_output=True, text=True, env=env, cwd=REPO)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().count("\n") == 0, plain.stderr
    debug = subprocess.run(
        [*cmd, "--debug", "--config.train.batch_size=abc"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


# ---- Labels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("12,abc", "malformed inline label list ('abc'"),
        ("1e308", "'1e308' is out of range"),
        ("3,-4", "'-4' is out of range"),
        ("5,nan", "'nan' is out of range"),
    ],
)
def test_bad_label_values_are_errors_naming_the_value(spec, needle):
    with pytest.raises(ValueError, match=None) as info:
        labels_lib.parse_labels(spec)
    assert needle in str(info.value)


def test_label_file_values_are_named(tmp_path):
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"a": [3, "x7"]}))
    with pytest.raises(ValueError, match="'x7' is not a frame number"):
        labels_lib.parse_labels(str(path), "a.mp4")


def test_frames_past_the_end_are_dropped_with_one_warning(caplog):
    labels = labels_lib.parse_labels("3,10,24,99")
    with caplog.at_level(logging.WARNING):
        kept = labels_lib.within_video(labels, 24, "v.mp4")
    assert kept.frames.tolist() == [3, 10]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "v.mp4" in warned[0] and "24, 99" in warned[0], warned
    assert labels_lib.within_video(labels_lib.parse_labels("1,2"), 24, "v.mp4").frames.tolist() == [1, 2]


def test_detect_with_malformed_inline_labels(clips, tmp_path, capsys):
    out = tmp_path / "e.json"
    status = cli.main(
        ["detect", str(clips / "a.mp4"), "--method", "inflection", "--labels", "12,abc", "--out", str(out)]
    )
    assert status == 1
    _one_error_line(capsys, "malformed inline label list", "abc")
    assert not out.exists()


def test_detect_drops_label_frames_past_the_end(clips, tmp_path, capsys):
    out = tmp_path / "e.json"
    status = cli.main(
        ["detect", str(clips / "a.mp4"), "--method", "inflection", "--labels", "5,500", "--out", str(out)]
    )
    assert status == 0
    assert json.loads(out.read_text())["labels"]["frames"] == [5]


# ---- Outputs ------------------------------------------------------------------------------------------


def test_folder_with_same_stem_videos_writes_unique_outputs(clips, tmp_path, capsys):
    out_dir = tmp_path / "out"
    status = cli.main(
        ["detect", str(clips), "--method", "inflection", "--out-dir", str(out_dir), "--overlay-format", "none"]
    )
    assert status == 0, capsys.readouterr().err
    summary = json.loads((out_dir / "summary.json").read_text())
    written = [row["events_json"] for row in summary["videos"]]
    assert len(written) == 2 and len(set(written)) == 2, written
    for row in summary["videos"]:
        assert json.loads(open(row["events_json"]).read())["video"] == os.path.abspath(row["video"])
    assert sorted(os.path.basename(p) for p in written) == ["a.avi.events.json", "a.mp4.events.json"]


@pytest.mark.parametrize("flag", ["--out", "--csv", "--plot", "--overlay"])
def test_output_whose_parent_is_a_file(flag, clips, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    name = {"--out": "e.json", "--csv": "e.csv", "--plot": "t.png", "--overlay": "o.gif"}[flag]
    events = tmp_path / "events.json"
    args = ["detect", str(clips / "a.mp4"), "--method", "inflection", flag, str(blocker / name)]
    if flag != "--out":
        args += ["--out", str(events)]
    status = cli.main(args)
    assert status == 1
    _one_error_line(capsys, str(blocker))
    assert not events.exists()  # checked before any work: nothing written


def test_unknown_overlay_and_plot_formats_are_named(clips, tmp_path, capsys):
    events = tmp_path / "events.json"
    for flag, name in (("--overlay", "o.xyz"), ("--plot", "t.xyz")):
        path = str(tmp_path / name)
        status = cli.main(["detect", str(clips / "a.mp4"), "--method", "inflection", "--out", str(events), flag, path])
        assert status == 1
        _one_error_line(capsys, path, "format")
        assert not events.exists()


def test_out_dir_that_is_a_file(clips, tmp_path, capsys):
    target = tmp_path / "d"
    target.write_text("x")
    status = cli.main(["detect", str(clips), "--method", "inflection", "--out-dir", str(target)])
    assert status == 1
    _one_error_line(capsys, str(target), "is a file")
    assert target.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_plot_folder(clips, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    events = tmp_path / "events.json"
    status = cli.main(
        ["detect", str(clips / "a.mp4"), "--method", "inflection", "--out", str(events), "--plot", str(ro / "t.png")]
    )
    assert status == 1
    _one_error_line(capsys, str(ro))
    assert not events.exists()


def test_existing_output_is_not_clobbered_by_a_failed_write(tmp_path, monkeypatch):
    from input_pipeline import paths

    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), paths.atomic_path(str(path)) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("writer failed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.json"]


# ---- prepare: names, folders, failures ---------------------------------------------------------------


def test_prepare_out_that_is_a_file(clips, tmp_path, capsys):
    target = tmp_path / "p"
    target.write_text("x")
    status = cli.main(["prepare", str(clips / "a.mp4"), "--out", str(target), "--workers", "1"])
    assert status == 1
    _one_error_line(capsys, str(target), "is a file")


def test_prepare_failure_leaves_no_empty_folder(tmp_path, capsys):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "broken.mp4").write_bytes(b"")
    out = tmp_path / "prepared"
    status = cli.main(["prepare", str(bad), "--out", str(out), "--workers", "1", "--size", "32"])
    assert status == 1
    assert not out.exists(), list(out.rglob("*"))


def test_prepare_any_file_name(clips, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    data = (clips / "a.mp4").read_bytes()
    names = ["good.mp4", "my clip é.mp4", "my_clip_é.mp4"]
    for name in names:
        (src / name).write_bytes(data)
    out = tmp_path / "prepared"
    status = cli.main(["prepare", str(src), "--out", str(out), "--workers", "1", "--size", "32", "--max-frames", "12"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    (tag,) = os.listdir(out)
    metas = [json.loads((out / tag / key / "meta.json").read_text()) for key in os.listdir(out / tag)]
    assert sorted(m["name"] for m in metas) == sorted(names)
    keys = [m["key"] for m in metas]
    assert len(set(keys)) == 3 and "good" in keys
    assert all(k.isascii() and " " not in k for k in keys)


def test_symlink_loop_is_named(tmp_path, capsys):
    loop = tmp_path / "loop.mp4"
    os.symlink(loop, loop)
    status = cli.main(["detect", str(loop), "--method", "inflection", "--out", str(tmp_path / "e.json")])
    assert status == 1
    _one_error_line(capsys, str(loop), "symbolic link loop")
    status = cli.main(["prepare", str(loop), "--out", str(tmp_path / "p")])
    assert status == 1
    _one_error_line(capsys, str(loop), "symbolic link loop")


def test_inflection_labels_array_stays_int():
    assert labels_lib.parse_labels("1,2.6").frames.dtype == np.int64
