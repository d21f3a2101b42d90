"""`detect --flow tvl1-jax` as one jitted program per batch of windows (ta2net_jax/detection/fused.py): device
grey == cv2's, the span indices == make_clip's layout, fused == unfused (flows, scores, maps) on 1 and 4
devices, and the command line reporting that it ran fused with the unfused path's events."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import QUICK_TVL1  # both paths of each equality test get the same settings
from jax.sharding import AxisType, Mesh

from input_pipeline import clips, flow_jax_batch, pipeline
from input_pipeline.flow import to_gray
from input_pipeline.synthetic import SceneConfig, generate_video
from ta2net_jax.detection import fused


def test_device_grey_is_opencv_grey():
    frames = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(jax.jit(fused.to_gray)(frames)), to_gray(frames).astype(np.float32))


@pytest.mark.parametrize("num_frames", [10, 24, 31])
def test_batch_indices_lay_out_windows_as_make_clip(num_frames):
    """Every window cut from a batch's span (frames and the span's forward/backward flow rows) is the clip
    make_clip cuts from the whole video, end padding included (10 frames: one window of 6 real positions)."""
    t, stride, batch = 8, 4, 3
    video = {
        "frames": np.arange(num_frames)[:, None, None, None] * np.ones((1, 1, 1, 3), np.int64),
        "flow_fwd": np.arange(num_frames - 1)[:, None, None, None] * np.ones((1, 1, 1, 2)),
        "flow_bwd": -1000.0 - np.arange(num_frames - 1)[:, None, None, None] * np.ones((1, 1, 1, 2)),
        "event_frames": np.zeros(0, np.int64),
    }
    starts = clips.window_starts(num_frames, t, stride)
    length = fused.span_length(num_frames, batch, t, stride)
    for i in range(0, len(starts), batch):
        s = starts[i : i + batch]
        nv = [min(t, num_frames - 2 - x) for x in s]  # last kept frame N − 3
        base = min(s[0] - 2, num_frames - length)
        idx = fused.batch_indices(s, nv, base, length, t)
        span_frames = video["frames"][base : base + length]
        pairs = slice(base, base + length - 1)
        rows = np.concatenate([video["flow_fwd"][pairs], video["flow_bwd"][pairs]])
        for k, start in enumerate(s):
            clip = clips.make_clip(video, start, t)
            np.testing.assert_array_equal(span_frames[idx["frame_idx"][k]], clip["frames"])
            np.testing.assert_array_equal(rows[idx["fwd_idx"][k]], clip["flow_fwd"])
            np.testing.assert_array_equal(rows[idx["bwd_idx"][k]], clip["flow_bwd"])
            assert idx["num_valid"][k] == clip["num_valid"]


def _mesh(num_devices: int, axis_type=AxisType.Auto) -> Mesh:
    return Mesh(np.asarray(jax.devices()[:num_devices]), ("data",), axis_types=(axis_type,))


def _unfused(model, config, mesh, frames, hflip_tta=False, times_s=None):
    """The unfused `tvl1-jax` path: the whole video's flow (float16, as flow.estimate_flow stores it), put per
    unit interval with `times_s` (a variable-rate file's timestamps, as detect puts it), windows on the host,
    then Predictor."""
    from input_pipeline import frame_times
    from ta2net_jax.inference import Predictor, predict_videos

    fwd, bwd = flow_jax_batch.estimate_flow_batch(to_gray(frames), mesh=mesh, **QUICK_TVL1)
    fwd, bwd = frame_times.per_unit_interval(fwd.astype(np.float16), bwd.astype(np.float16), times_s, 25.0)
    example = {
        "id": "video",
        "fps": 25.0,
        "frames": frames,
        "flow_fwd": fwd,
        "flow_bwd": bwd,
        "event_frames": np.zeros(0, np.int64),
    }
    windows = pipeline.VideoWindows(config.data.num_frames, config.eval.stride).map(example)
    video = next(predict_videos(Predictor(model, config, mesh, hflip_tta=hflip_tta), [windows]))
    return video, example


def test_short_videos_share_one_compiled_program(smoke_config):
    """Videos shorter than a batch's span (24 frames here) run padded to the next power of two with their
    last frame repeated: 9 and 13 frames share one compiled program (one per length exhausted the kernel's
    memory mappings over a folder of videos), and the padding changes nothing (= the unfused path)."""
    from ta2net_jax.model import build_model

    assert [fused.compiled_span_length(n, 4, 8, 4) for n in (5, 8, 9, 16, 17, 23, 24, 300)] == [
        8,
        8,
        16,
        16,
        24,
        24,
        24,
        24,
    ]
    model = build_model(smoke_config, seed=0)
    mesh = _mesh(1)
    predictor = fused.FusedPredictor(model, smoke_config, mesh, flow_params=QUICK_TVL1)
    for num_frames in (9, 13):
        frames = generate_video(2, SceneConfig(height=32, width=32, num_frames=num_frames)).frames
        got = predictor.predict_video(frames)
        want, example = _unfused(model, smoke_config, mesh, frames)
        assert got["flow_fwd"].shape == example["flow_fwd"].shape and np.abs(example["flow_fwd"]).max() > 0.5
        np.testing.assert_allclose(
            got["flow_bwd"].astype(np.float32), example["flow_bwd"].astype(np.float32), atol=2e-3
        )
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    assert predictor._forward._cache_size() == 1


@pytest.mark.parametrize(
    "num_devices, lengths, axis_type, hflip_tta, accelerator_style",
    [
        (1, (24,), AxisType.Auto, True, False),
        (4, (24, 10), AxisType.Auto, False, False),
        (4, (24,), AxisType.Explicit, False, False),
        (4, (24, 10), AxisType.Explicit, False, True),
    ],
)
def test_fused_equals_unfused(smoke_config, num_devices, lengths, axis_type, hflip_tta, accelerator_style):
    """A randomly initialised smoke model (raw inflection, 8-frame windows every 4, 4 per batch) on a 24-frame
    32×32 synthetic video (5 windows: two batches, the second padded) and a 10-frame one (one end-padded
    window; 4 devices only, to save a compilation): flows, P(audible) and maps of the fused program equal the
    unfused path's, on Auto and on Explicit mesh axes (`mesh.axis_types`); on one device with the mirrored
    pass averaged in (`hflip_tta`, inference.py), which the fused program takes on the flows it estimated.
    `accelerator_style`: the flow as GPUs and TPUs run it by default (flow_jax_batch.default_compaction and larger
    steps), scaled down: 8 pairs per device and step with compaction 2, so the 24-frame span's 46 pairs are
    padded to 64 and solved as two compacted steps per device."""
    from ta2net_jax.model import build_model

    model = build_model(smoke_config, seed=0)
    mesh = _mesh(num_devices, axis_type)
    flow_params, pairs_per_step = ({**QUICK_TVL1, "compaction": 2}, 8) if accelerator_style else (QUICK_TVL1, None)
    predictor = fused.FusedPredictor(
        model, smoke_config, mesh, pairs_per_step=pairs_per_step, flow_params=flow_params, hflip_tta=hflip_tta
    )
    for num_frames in lengths:
        frames = generate_video(1, SceneConfig(height=32, width=32, num_frames=num_frames)).frames
        got = predictor.predict_video(frames)
        want, example = _unfused(model, smoke_config, mesh, frames, hflip_tta)
        for key in ("flow_fwd", "flow_bwd"):
            assert got[key].dtype == np.float16 and got[key].shape == example[key].shape
            # Per-pair TV-L1 whatever the batch: equal up to float32 evaluation order, then float16 rounding.
            np.testing.assert_allclose(got[key].astype(np.float32), example[key].astype(np.float32), atol=2e-3)
            assert np.abs(example[key]).max() > 0.5  # the video moves: the comparison is not of zeros
        np.testing.assert_array_equal(np.isnan(got["scores"]), np.isnan(want["scores"]))
        assert np.isnan(got["scores"]).sum() == 4
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
        np.testing.assert_allclose(got["maps"], want["maps"], atol=1e-5)


def test_fused_puts_a_variable_rate_videos_flow_per_unit_interval(smoke_config):
    """A variable-rate file's frame timestamps (25 fps, two frames dropped, then 12.5 fps) put every pair's flow
    per unit interval inside the fused program exactly as the unfused path puts its stored flow
    (frame_times.per_unit_interval), on 4 devices, by the program that serves uniform time (one compilation)."""
    from input_pipeline import frame_times
    from ta2net_jax.model import build_model

    model = build_model(smoke_config, seed=0)
    mesh = _mesh(4)
    predictor = fused.FusedPredictor(model, smoke_config, mesh, flow_params=QUICK_TVL1)
    frames = generate_video(1, SceneConfig(height=32, width=32, num_frames=24)).frames
    ticks = np.r_[np.arange(6), np.arange(7, 10), np.arange(11, 20), 19 + 2 * np.arange(1, 7)]  # of 1/25 s
    times_s = ticks / 25.0
    uniform = predictor.predict_video(frames)
    got = predictor.predict_video(frames, frame_times.interval_gains(times_s, 25.0))
    want, example = _unfused(model, smoke_config, mesh, frames, times_s=times_s)
    for key in ("flow_fwd", "flow_bwd"):
        np.testing.assert_allclose(got[key].astype(np.float32), example[key].astype(np.float32), atol=2e-3)
        # pairs across a dropped frame or at 12.5 fps span two intervals: their flow is halved
        np.testing.assert_allclose(
            got[key][-4:].astype(np.float32), uniform[key][-4:].astype(np.float32) / 2, atol=2e-3, rtol=2e-3
        )
        assert np.abs(got[key][-4:]).max() > 0.25
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    np.testing.assert_allclose(got["maps"], want["maps"], atol=1e-5)
    # the gains reach the model (a random model's P(audible) hardly moves; its maps do, by 0.03)
    assert np.nanmax(np.abs(got["maps"] - uniform["maps"])) > 1e-2
    assert predictor._forward._cache_size() == 1
    with pytest.raises(ValueError, match="interval gains"):
        predictor.predict_video(frames, np.ones(5, np.float32))


def test_cli_detect_runs_fused(smoke_config, tmp_path):
    """`ta2net detect VIDEO --workdir BUNDLE --flow tvl1-jax` says it ran fused, and its scores and events are
    those of the unfused path (VideoDetector(fused=False)). Both take their TV-L1 settings from the bundle's
    tvl1-jax thresholds (`calibrate --flow tvl1-jax --tvl1 ...` stores them there); cheap ones here, since the
    equality holds for any (detect at OpenCV's defaults: test_flow_jax.py)."""
    from input_pipeline.video import write_video
    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.export.bundle import write_bundle
    from ta2net_jax.model import build_model

    bundle = str(tmp_path / "bundle")
    write_bundle(build_model(smoke_config, seed=0), smoke_config, 0, str(tmp_path), bundle)
    clip = generate_video(2, SceneConfig(height=32, width=32, num_frames=20))
    video = str(tmp_path / "clip.mp4")
    write_video(video, clip.frames, clip.fps)
    out = tmp_path / "fused.json"
    tuned_path = tmp_path / "bundle" / "detector.json"
    tvl1_thresholds = {"native": 0.5, "tvl1_options": QUICK_TVL1}
    tuned_path.write_text(
        json.dumps({**json.loads(tuned_path.read_text()), "thresholds_by_flow": {"tvl1-jax": tvl1_thresholds}})
    )
    args = ["detect", video, "--workdir", bundle, "--flow", "tvl1-jax", "--out", str(out)]
    unfused = VideoDetector(workdir=bundle, flow_method="tvl1-jax", fused=False)
    assert unfused.tvl1_options == QUICK_TVL1
    # Threshold at the median score: a random model's P(audible) sits near 0.5, so fix events to compare.
    want = unfused.analyse(video)
    threshold = float(np.nanmedian(want["scores"]))
    unfused.picking = unfused.picking.replace(threshold=threshold)
    want = unfused.analyse(video)
    assert cli.main([*args, "--threshold", repr(threshold)]) == 0
    got = json.loads(out.read_text())
    assert got["fused"] is True and got["flow"] == "tvl1-jax"
    scores = np.array([np.nan if s is None else s for s in got["scores"]])
    np.testing.assert_allclose(scores, want["scores"], atol=1e-5)
    assert want["events"] and [e["frame"] for e in got["events"]] == [e["frame"] for e in want["events"]]
    for e, w in zip(got["events"], want["events"]):
        assert e["x"] == pytest.approx(w["x"], abs=1e-3) and e["y"] == pytest.approx(w["y"], abs=1e-3)


def test_detect_runs_a_variable_rate_file_fused(smoke_config, tmp_path):
    """A variable-rate file (30 fps, then 15) under `--flow tvl1-jax` runs fused with its flow per unit interval,
    and scores as the unfused path does (which puts the host's flow per unit interval)."""
    from test_frame_times import VFR_TIMES_S, turning_texture, write_vfr

    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.export.bundle import write_bundle
    from ta2net_jax.model import build_model

    bundle = str(tmp_path / "bundle")
    write_bundle(build_model(smoke_config, seed=0), smoke_config, 0, str(tmp_path), bundle)
    video = str(tmp_path / "phone.mp4")
    write_vfr(video, turning_texture(VFR_TIMES_S), VFR_TIMES_S)
    got = VideoDetector(workdir=bundle, flow_method="tvl1-jax").analyse(video)
    want = VideoDetector(workdir=bundle, flow_method="tvl1-jax", fused=False).analyse(video)
    assert got["fused"] and not want["fused"]
    assert got["flow_per_unit_interval"] and want["flow_per_unit_interval"]
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    # The two programs may round TV-L1 differently (oneDNN's convolutions change how XLA compiles the fused
    # one): the stored float16 flow then differs by one step (2^-11 of its size), which the random smoke
    # model's maps carry at ~1e-4.
    np.testing.assert_allclose(got["maps"], want["maps"], atol=1e-3)
