"""`ta2net detect` outputs: events CSV, overlay GIF (heatmap, flash on events), folder batch mode with a
progress bar and bad files skipped, Audible623 labels on the timeline. Training-free method: no checkpoint."""

import csv
import json
import os

import numpy as np
import pytest
from conftest import realdata
from PIL import Image

from ta2net_jax.cli import main as cli
from ta2net_jax.detection import detect as detect_lib, overlay


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """Two tiny synthetic videos (32×32, 24 frames) with their event frames, an empty .mp4 and a text file."""
    from input_pipeline import synthetic, video

    folder = tmp_path_factory.mktemp("videos")
    labels = {}
    for seed in (1, 2):
        clip = synthetic.generate_video(seed, synthetic.SceneConfig(height=32, width=32, num_frames=24))
        video.write_video(str(folder / f"clip{seed}.mp4"), clip.frames, clip.fps)
        labels[f"clip{seed}"] = [e.frame for e in clip.events]
    (folder / "broken.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video, and not listed")
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_single_video_csv_and_gif(video_folder, tmp_path, capsys):
    video = str(video_folder / "clip1.mp4")
    out, table, gif = tmp_path / "e.json", tmp_path / "e.csv", tmp_path / "o.gif"
    assert (
        cli.main(
            [
                "detect",
                video,
                "--method",
                "inflection",
                "--threshold",
                "1.0",
                "--out",
                str(out),
                "--csv",
                str(table),
                "--overlay",
                str(gif),
            ]
        )
        == 0
    )
    result = json.load(open(out))
    rows = read_csv(table)
    assert len(rows) == len(result["events"]) > 0
    for row, e in zip(rows, result["events"]):
        assert set(row) == {"frame", "time_s", "score", "x", "y"}
        assert int(row["frame"]) == e["frame"] and float(row["time_s"]) == pytest.approx(
            e["frame"] / result["fps"], abs=1e-4
        )
        assert float(row["score"]) == pytest.approx(e["score"], rel=1e-5) and 0 <= float(row["x"]) <= 32
    with Image.open(gif) as im:  # every frame, plus the score strip under the 32×32 picture
        assert im.n_frames == 24 and im.size == (32, 32 + overlay.STRIP_HEIGHT)
    assert "csv:" in capsys.readouterr().out


def test_out_dash_writes_only_the_json_to_stdout(video_folder, tmp_path, capsys, monkeypatch):
    """`--out -` (or `--csv -`) is standard output, for a pipe: only the JSON (CSV) there, what is said on
    stderr, and no file named "-"."""
    monkeypatch.chdir(tmp_path)
    video = str(video_folder / "clip1.mp4")
    table = tmp_path / "e.csv"
    common = ["detect", video, "--method", "inflection", "--threshold", "1.0"]
    assert cli.main([*common, "--out", "-", "--csv", str(table)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # nothing but the JSON
    assert result["events"] and len(read_csv(table)) == len(result["events"])
    assert "events (inflection" in captured.err and f"csv: {table}" in captured.err
    assert cli.main([*common, "--csv", "-"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(captured.out.splitlines()))
    assert [int(r["frame"]) for r in rows] == [e["frame"] for e in result["events"]]
    assert "  frame " not in captured.err  # the events are on stdout, not listed again
    assert not os.path.exists(tmp_path / "-")
    assert cli.main([*common, "--out", "-", "--csv", "-"]) == 1
    assert "both ask for standard output" in capsys.readouterr().err
    assert cli.main(["detect", str(video_folder), "--method", "inflection", "--out", "-"]) == 1
    assert "not with a folder" in capsys.readouterr().err


def test_overlay_flashes_on_event_frames():
    frames = np.full((8, 40, 40, 3), 60, np.uint8)
    video = overlay.render_overlay(frames, None, np.linspace(0, 1, 8), [{"frame": 3, "x": 20.0, "y": 20.0}])
    assert video.shape == (8, 40 + overlay.STRIP_HEIGHT, 40, 3)
    corner = video[:, 0, 0].astype(int)  # the border: yellow at the event, fading, untouched elsewhere
    assert (corner[3] == [255, 230, 0]).all()
    assert (corner[2] == 60).all() and (corner[3 + overlay.FLASH_FRAMES] == 60).all()
    assert corner[4, 0] > corner[5, 0] > 60  # decays over FLASH_FRAMES frames
    assert (video[3, 20, 20] == [255, 230, 0]).all() and (video[2, 20, 20] == 60).all()  # the source cross


def test_folder_batch(video_folder, tmp_path, capsys):
    out_dir = tmp_path / "out"
    status = cli.main(
        [
            "detect",
            str(video_folder),
            "--method",
            "inflection",
            "--threshold",
            "1.0",
            "--out-dir",
            str(out_dir),
            "--labels",
            str(video_folder / "labels.json"),
        ]
    )
    printed = capsys.readouterr()
    assert status == 1  # broken.mp4 was skipped and reported: not a silent success
    assert "broken.mp4" in printed.out and "empty" in printed.out
    assert "detect (inflection)" in printed.err  # the progress bar
    summary = json.load(open(out_dir / "summary.json"))
    assert [os.path.basename(v["video"]) for v in summary["videos"]] == ["clip1.mp4", "clip2.mp4"]
    assert len(summary["failed"]) == 1 and "broken.mp4" in summary["failed"][0]
    for stem in ("clip1", "clip2"):
        result = json.load(open(out_dir / f"{stem}.events.json"))
        assert len(read_csv(out_dir / f"{stem}.events.csv")) == len(result["events"])
        assert result["labels"]["frames"] == json.load(open(video_folder / "labels.json"))[stem]
        assert open(out_dir / f"{stem}.timeline.png", "rb").read(4) == b"\x89PNG"
        assert Image.open(out_dir / f"{stem}.overlay.gif").n_frames == 24
    with pytest.raises(ValueError, match="no video files"):
        detect_lib.list_videos(str(tmp_path))
    assert cli.main(["detect", str(video_folder), "--method", "inflection", "--out", "x.json"]) == 1
    assert "--out-dir" in capsys.readouterr().err


def test_too_short_video_is_skipped_with_its_frame_count(tmp_path, capsys):
    """A 1-frame clip cannot give inflection flow: skipped, named, counted in words, exit status 1."""
    from input_pipeline import video

    path = tmp_path / "still.mp4"
    video.write_video(str(path), np.zeros((1, 32, 32, 3), np.uint8), 30.0)
    status = cli.main(["detect", str(path), "--method", "inflection", "--out-dir", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert status == 1
    assert f"{path}: only 1 frame; at least {video.MIN_FRAMES} are needed" in printed
    with pytest.raises(video.VideoTooShortError, match="only 4 frames"):
        video.check_frame_count("x.mp4", 4)
    video.check_frame_count("x.mp4", video.MIN_FRAMES)  # enough: no error


def test_audible623_labels_on_the_timeline(tmp_path, monkeypatch):
    """The acceptance command: `detect v_BoxingPunchingBag_g05_c01.avi --plot t.png --labels labels.json`."""
    video = realdata("ucf101_audible623", "v_BoxingPunchingBag_g05_c01.avi")
    labels = realdata("ucf101_audible623", "labels.json")
    from ta2net_jax.evaluation import plots

    drawn = {}
    real_plot = plots.plot_timeline
    monkeypatch.setattr(
        plots, "plot_timeline", lambda path, scores, **kw: (drawn.update(kw), real_plot(path, scores, **kw))
    )
    plot = tmp_path / "t.png"
    assert cli.main(["detect", video, "--method", "inflection", "--plot", str(plot), "--labels", labels]) == 0
    assert list(drawn["labels"]) == [40, 58, 104, 121, 135, 150, 181, 191, 206, 216, 233, 268]
    assert open(plot, "rb").read(4) == b"\x89PNG"


def test_eval_videos_report(video_folder, tmp_path, capsys):
    """`ta2net eval-videos` on a folder with a keyed label file: temporal + counting tables and plots."""
    from ta2net_jax.evaluation.metrics import timing as metrics

    out_dir = tmp_path / "ev"
    good = [str(video_folder / "clip1.mp4"), str(video_folder / "clip2.mp4")]
    assert (
        cli.main(
            [
                "eval-videos",
                *good,
                "--labels",
                str(video_folder / "labels.json"),
                "--method",
                "inflection",
                "--out-dir",
                str(out_dir),
            ]
        )
        == 0
    )
    assert "report:" in capsys.readouterr().out
    result = json.load(open(out_dir / "results.json"))
    d = result["detectors"]["inflection"]
    # Without --workdir the training-free method keeps its own default picking (as `ta2net detect` does), not
    # the packaged model's detector.json.
    from ta2net_jax.detection import detectors

    assert d["threshold_source"] == "default"
    assert d["picking"] == detectors.get("inflection").default_picking().to_dict()
    labels = json.load(open(video_folder / "labels.json"))
    for row in d["counting_per_video"]:
        stem = row["id"].removesuffix(".mp4")
        assert row["gt_count"] == metrics.cluster_runs(labels[stem]).size and row["gt_kind"] == "events"
        assert row["pred_events"] == len(d["events"][row["id"]])
    assert d["temporal"]["num_videos"] == 2 and "ap_tol3" in d["temporal"]
    report = open(out_dir / "report.md").read()
    for section in ("## Temporal (pooled)", "## Counting (pooled)", "## Per video: inflection"):
        assert section in report
    assert (out_dir / "plots" / "counts.png").exists() and (out_dir / "plots" / "clip1.inflection.png").exists()
    # a video that the label file does not know is an error naming both
    assert (
        cli.main(
            [
                "eval-videos",
                str(video_folder / "broken.mp4"),
                "--labels",
                str(video_folder / "labels.json"),
                "--out-dir",
                str(out_dir),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "labels.json" in err and "broken.mp4" in err
