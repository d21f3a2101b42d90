"""Black borders (input_pipeline/borders.py): which bars are found (letterbox, pillarbox, video-black bars
with codec noise), which dark areas are not (textured or moving dark scenery, a blank video), the crop in
read_video (PyAV and the OpenCV fallback), detect's use of it (events in source pixels, --keep-borders, the
reference never crops, eval-videos lists them) and the real clips (UCF101 letterboxed, Greatest Hits not)."""

import numpy as np
import pytest
from conftest import REPO, realdata

from input_pipeline import borders as borders_lib
from input_pipeline.borders import Borders, find_borders


def picture(num_frames: int = 6, h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    """``[N, h, w, 3]`` uint8: a bright random texture that changes every frame (a picture, never a bar)."""
    rng = np.random.default_rng(seed)
    return rng.integers(40, 256, (num_frames, h, w, 3), dtype=np.uint8)


def boxed(frames: np.ndarray, top=0, bottom=0, left=0, right=0, level=16, noise=1.0, seed=1) -> np.ndarray:
    """``frames`` inside bars of grey ``level`` with codec-like noise (± ``noise`` levels)."""
    n, h, w, _ = frames.shape
    rng = np.random.default_rng(seed)
    out = level + rng.uniform(-noise, noise, (n, h + top + bottom, w + left + right, 3))
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[:, top : top + h, left : left + w] = frames
    return out


@pytest.mark.parametrize(
    "bars", [dict(top=8, bottom=8), dict(left=10, right=9), dict(top=3, bottom=5, left=7, right=2), dict(top=12)]
)
def test_bars_are_found_exactly(bars):
    assert find_borders(boxed(picture(), **bars)) == Borders(**bars)
    assert find_borders(boxed(picture(), level=0, noise=0, **bars)) == Borders(**bars)  # pure black too


def test_no_bars_no_crop_and_the_arithmetic():
    assert find_borders(picture()) == Borders() and not Borders()
    b = Borders(top=10, bottom=20, left=5, right=15)
    frames = np.zeros((2, 100, 80, 3), np.uint8)
    assert b.crop(frames).shape == (2, 70, 60, 3) and b.crop(frames[0]).shape == (70, 60, 3)
    assert b.picture_box((100, 80)) == (10, 5, 80, 65)
    # A point in a 64×64 resize of the picture → source pixels: the picture's corner, centre and far corner.
    assert b.to_source(0, 0, (64, 64), (100, 80)) == (5, 10)
    assert b.to_source(32, 32, (64, 64), (100, 80)) == pytest.approx((35, 45))
    assert b.to_source(64, 64, (64, 64), (100, 80)) == pytest.approx((65, 80))
    assert b.to_dict() == {"top": 10, "bottom": 20, "left": 5, "right": 15}


def test_dark_scenery_is_not_a_bar():
    frames = boxed(picture(), top=8, bottom=8)
    # Dark but textured rows at the top (a night sky: grey 0–24, spread ≫ 2 levels): not a bar.
    rng = np.random.default_rng(3)
    frames[:, :8] = rng.integers(0, 25, frames[:, :8].shape, dtype=np.uint8)
    assert find_borders(frames) == Borders(bottom=8)
    # A bar row that something bright crosses in one frame stops the bar there.
    frames = boxed(picture(), top=8, bottom=8)
    frames[3, 5, 30] = 200
    assert find_borders(frames) == Borders(top=5, bottom=8)  # rows 0–4 stay a bar
    # A blank (or all-dark) video is not a letterbox: less than MIN_KEPT of it would remain.
    assert find_borders(np.full((4, 40, 60, 3), 16, np.uint8)) == Borders()
    assert find_borders(boxed(picture(h=10), top=12, bottom=12)) == Borders()  # 10 of 34 rows: < half
    assert borders_lib.MIN_KEPT == 0.5 and borders_lib.BLACK_LEVEL == 24.0


def test_read_video_crops_before_the_resize(tmp_path, monkeypatch):
    from input_pipeline import video, video_decode

    inner = np.repeat(np.repeat(picture(8, 20, 32, seed=2), 4, axis=1), 4, axis=2)  # smooth enough for x264
    frames = boxed(inner, top=24, bottom=24)  # 80×128 picture in a 128×128 frame
    path = str(tmp_path / "letterbox.mp4")
    video.write_video(path, frames, 25.0, crf=18, pix_fmt="yuv420p")
    plain = video.read_video(path, size=(32, 32))
    cropped = video.read_video(path, size=(32, 32), crop_borders=True)
    assert plain.borders == Borders() and cropped.borders == Borders(top=24, bottom=24)
    assert cropped.frames.shape == plain.frames.shape == (8, 32, 32, 3) and cropped.source_size == (128, 128)
    assert cropped.frames[:, :3].mean() > 60 > plain.frames[:, :3].mean()  # the top rows are picture now
    native = video.read_video(path, crop_borders=True)
    assert native.frames.shape == (8, 80, 128, 3)
    # The OpenCV fallback (files PyAV cannot parse) crops the same way.
    monkeypatch.setattr(video_decode, "_open", lambda p: (None, "PyAV cannot parse it"))
    fallback = video.read_video(path, size=(32, 32), crop_borders=True)
    assert fallback.borders == Borders(top=24, bottom=24)
    assert np.abs(fallback.frames.astype(int) - cropped.frames).mean() < 2


def test_detect_crops_and_reports_source_pixels(tmp_path):
    from input_pipeline import video
    from input_pipeline.synthetic import SceneConfig, generate_video
    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.evaluation import videos

    clip = generate_video(3, SceneConfig(height=64, width=96, num_frames=40))
    frames = boxed(clip.frames, left=16, right=16, noise=0.0)  # 64×96 picture pillarboxed to 64×128
    path = str(tmp_path / "pillarbox.mp4")
    video.write_video(path, frames, 30.0)
    a = VideoDetector(method="inflection", image_size=64).analyse(path)
    assert a["borders"] == {"top": 0, "bottom": 0, "left": 16, "right": 16}
    assert a["events"] and all(16 <= e["x"] <= 112 and 0 <= e["y"] <= 64 for e in a["events"])
    kept = VideoDetector(method="inflection", image_size=64, keep_borders=True).analyse(path)
    assert kept["borders"] == {"top": 0, "bottom": 0, "left": 0, "right": 0}
    # The reference (issue 12's fixed definition) always sees the whole frame.
    assert not any(VideoDetector(method="reference").analyse(path)["borders"].values())
    for keep, expected in ((False, {"pillarbox.mp4": a["borders"]}), (True, {})):
        result = videos.evaluate_files(
            [path], "3,20", str(tmp_path / f"eval_{keep}"), methods=("inflection",), progress=False, keep_borders=keep
        )
        assert result["detectors"]["inflection"]["borders"] == expected


def test_the_real_clips():
    from input_pipeline.video import read_video

    for name, expected in (
        ("v_BoxingPunchingBag_g05_c01.avi", Borders(top=30, bottom=30)),
        ("v_SoccerJuggling_g23_c01.avi", Borders(top=13, bottom=13)),
    ):
        decoded = read_video(realdata("ucf101_audible623", name), size=(64, 64), crop_borders=True)
        assert decoded.borders == expected and decoded.source_size == (240, 320)
    hits = read_video(realdata("greatest_hits_condfoleygen", "hitting_bag.mp4"), size=(64, 64), crop_borders=True)
    assert hits.borders == Borders()


def test_prepare_crops_as_detect_does_and_runs_keep_their_input(tmp_path):
    """`ta2net prepare` crops the same borders (meta.json `borders`, a `-crop` folder tag), `--keep-borders`
    keeps them in a folder of its own, and a run trained on whole frames is detected on whole frames."""
    import json

    import ml_collections

    from input_pipeline import registry, video
    from ta2net_jax.cli import main as cli

    src = tmp_path / "videos"
    src.mkdir()
    inner = np.repeat(np.repeat(picture(8, 20, 32, seed=4), 4, axis=1), 4, axis=2)
    video.write_video(str(src / "a.mp4"), boxed(inner, top=24, bottom=24), 25.0, crf=18, pix_fmt="yuv420p")
    out = tmp_path / "prepared"
    base = ["prepare", str(src), "--out", str(out), "--size", "16", "--workers", "1"]
    assert cli.main(base) == 0 and cli.main([*base, "--keep-borders"]) == 0
    cropped = json.load(open(out / "16px-dis-native-max300-q95-crop" / "a" / "meta.json"))
    whole = json.load(open(out / "16px-dis-native-max300-q95" / "a" / "meta.json"))
    assert cropped["borders"] == {"top": 24, "bottom": 24, "left": 0, "right": 0} and cropped["options"]["crop_borders"]
    assert whole["borders"] == {"top": 0, "bottom": 0, "left": 0, "right": 0} and not whole["options"]["crop_borders"]

    data = dict(name="audible623", image_size=16, flow_method="dis")
    assert registry.input_spec(ml_collections.ConfigDict(data)).crop_borders
    assert not registry.input_spec(ml_collections.ConfigDict({**data, "crop_borders": False})).crop_borders

    from ta2net_jax.config_utils import load_config, save_config
    from ta2net_jax.detection.detect import VideoDetector

    letterboxed = str(src / "a.mp4")
    for crop in (True, False):  # a workdir with the config of a run on the real dataset, cropped or not
        workdir = tmp_path / f"run_{crop}"
        workdir.mkdir()
        config = load_config(f"{REPO}/configs/audible623_data.py", ["data.image_size=16", f"data.crop_borders={crop}"])
        save_config(config, str(workdir / "config.json"))
        detector = VideoDetector(workdir=str(workdir), method="inflection")
        assert detector.crop_borders is crop
        assert any(detector.analyse(letterboxed)["borders"].values()) is crop
