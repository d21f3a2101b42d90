"""The `ta2net` command line as a user runs it: bad input gives one clear line naming the file and the
problem (non-zero exit); the dataset build skips bad files and reports them; detect on a real clip."""

import json
import os
import shutil

import pytest
from conftest import realdata

from input_pipeline.datasets import synthetic_collisions
from ta2net_jax.cli import main as cli


def write_bad_files(folder) -> dict[str, str]:
    """name → expected problem text for a missing, an empty, a non-video and a truncated file."""
    os.makedirs(folder, exist_ok=True)
    from input_pipeline import synthetic, video

    clip = synthetic.generate_video(0, synthetic.SceneConfig(height=32, width=32, num_frames=24))
    good = os.path.join(folder, "good.mp4")
    video.write_video(good, clip.frames, clip.fps)
    data = open(good, "rb").read()
    with open(os.path.join(folder, "truncated.mp4"), "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    open(os.path.join(folder, "empty.mp4"), "wb").close()
    with open(os.path.join(folder, "notes.mp4"), "w") as f:
        f.write("these are not frames\n" * 20)
    os.remove(good)
    return {
        "missing.mp4": "no such file",
        "empty.mp4": "empty",
        "notes.mp4": "not a video",
        "truncated.mp4": "truncated",
    }


def test_detect_bad_input_one_line_and_nonzero_exit(tmp_path, capsys):
    problems = write_bad_files(tmp_path / "bad")
    for name, problem in problems.items():
        path = str(tmp_path / "bad" / name)
        status = cli.main(["detect", path, "--method", "inflection", "--out", str(tmp_path / "e.json")])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1
        assert len(err) == 1 and path in err[0] and problem in err[0].lower(), err
        assert not os.path.exists(tmp_path / "e.json")


def test_detect_without_checkpoint_needs_inflection_method(tmp_path, capsys, monkeypatch):
    """With no --workdir and no packaged default model, the model method asks for a run."""
    from ta2net_jax.export import bundle

    monkeypatch.setattr(bundle, "PACKAGED_MODEL_DIR", str(tmp_path / "no_model"))
    status = cli.main(
        [
            "detect",
            realdata("greatest_hits_condfoleygen", "hitting_bag.mp4"),
            "--method",
            "model",
            "--out",
            str(tmp_path / "e.json"),
        ]
    )
    assert status == 1 and "--workdir" in capsys.readouterr().err


def test_detect_inflection_on_real_clip(tmp_path, capsys):
    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    out, plot = tmp_path / "events.json", tmp_path / "timeline.png"
    assert (
        cli.main(
            [
                "detect",
                video,
                "--method",
                "inflection",
                "--out",
                str(out),
                "--plot",
                str(plot),
                "--labels",
                "2,14,25,37,48,60,72,83",
            ]
        )
        == 0
    )
    result = json.load(open(out))
    assert result["num_frames"] == 90 and result["fps"] == pytest.approx(15.0)
    assert result["source_size"] == [340, 604] and result["method"] == "inflection"
    assert len(result["scores"]) == 90 and result["scores"][0] is None  # frames 0, 1 are not scored
    for e in result["events"]:
        assert 2 <= e["frame"] <= 87 and e["time_s"] == pytest.approx(e["frame"] / 15.0)
        assert 0 <= e["x"] <= 604 and 0 <= e["y"] <= 340
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "events" in capsys.readouterr().out


def test_build_skips_bad_files_and_reports_them(tmp_path, capsys):
    data_dir = str(tmp_path / "tfds")
    config = synthetic_collisions.config_for("tiny")
    raw = os.path.join(data_dir, "raw", "synthetic_collisions", "tiny")
    synthetic_collisions.render_split(config, "validation", raw)
    problems = write_bad_files(os.path.join(raw, "validation"))
    for name in problems:
        if name != "missing.mp4":  # give the bad files events, so only the video itself is wrong
            shutil.copy(
                os.path.join(raw, "validation", "validation_00000.json"),
                os.path.join(raw, "validation", name.replace(".mp4", ".json")),
            )
    # a video without its events file
    shutil.copy(os.path.join(raw, "validation", "validation_00001.mp4"), os.path.join(raw, "validation", "orphan.mp4"))
    # events whose video is missing
    shutil.copy(os.path.join(raw, "validation", "validation_00002.json"), os.path.join(raw, "validation", "gone.json"))
    builder = synthetic_collisions.build_dataset(data_dir, "tiny", workers=1)
    assert builder.info.splits["validation"].num_examples == 3
    report = json.load(open(os.path.join(builder.data_dir, "build_report.json")))
    skipped = report["skipped"]["validation"]
    assert len(skipped) == 5
    for name, problem in [
        ("empty.mp4", "empty"),
        ("notes.mp4", "not a video"),
        ("truncated.mp4", "truncated"),
        ("orphan.mp4", "no events file"),
        ("gone.mp4", "no such file"),
    ]:
        assert any(name in line and problem in line.lower() for line in skipped), (name, skipped)
    printed = capsys.readouterr()
    assert sum(line.startswith("skipped: ") for line in (printed.out + printed.err).splitlines()) == 5


def test_config_override_errors_name_the_key(tmp_path, capsys):
    status = cli.main(
        ["train", "--config", "configs/synthetic_small.py", "--workdir", str(tmp_path), "--config.train.no_such_key=3"]
    )
    assert status == 1 and "train.no_such_key" in capsys.readouterr().err
    status = cli.main(["train", "--config", "configs/missing.py", "--workdir", str(tmp_path)])
    assert status == 1 and "configs/missing.py" in capsys.readouterr().err


def test_building_the_parser_imports_no_heavy_library():
    # `ta2net info`/`--help` must not pay for (or need) OpenCV, PyAV, grain, TFDS or JAX at start-up.
    import subprocess
    import sys

    code = (
        "import sys, ta2net_jax.cli.main as c; c._parser(); "
        "print(','.join(m for m in ('cv2', 'av', 'grain', 'tensorflow_datasets', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_a_closed_pipe_is_not_an_error_message():
    """`ta2net ... | head`: when the reader has gone, the command stops without a `ta2net: error` line."""
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "ta2net_jax.cli.main", "info", "--config", "configs/audible623.py:smoke"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    proc.stdout.close()  # before the child has written anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "error" not in err and "Traceback" not in err, err


def test_version_names_the_package_and_the_stack_on_one_line(capsys):
    import flax
    import jax

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines  # not wrapped at the terminal's width
    assert lines[0].startswith("ta2net-jax 0.1.0 (")
    assert f"jax {jax.__version__}," in lines[0] and f"flax {flax.__version__}," in lines[0]
