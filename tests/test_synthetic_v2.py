"""Synthetic generator v2: exact events, camera in the exact flow, labelled negatives, fps range, v1 unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import cv2
import numpy as np
import pytest
from scipy import ndimage

from input_pipeline.synthetic import SceneConfig, generate_video
from input_pipeline.synthetic.generate import physics_constants
from input_pipeline.synthetic.physics import Body, simulate
from input_pipeline.synthetic.randomize import resize_flow
from input_pipeline.synthetic.v2 import V2_TINY, V2Config, floor_speed_limit, generate_v2, scene_config_for

# sha256 of generate_video(7, 32x32, 24 frames): frames, forward flow and event frames/times, measured on
# commit 3835881 (before v2): v1 output must stay bit-identical.
V1_HASH = "0830e76bac5b8b0e68fc1092a8723069b17dcb2e327dba9eb7a1387c5b381000"
MOVING_CAMERA = dataclasses.replace(V2_TINY, zoom_prob=1.0, pan_prob=1.0, shake_prob=1.0, zoom_base=(0.08, 0.1))


def test_v1_unchanged():
    v = generate_video(7, SceneConfig(height=32, width=32, num_frames=24))
    h = hashlib.sha256(v.frames.tobytes())
    h.update(v.flow_fwd.tobytes())
    h.update(repr([(e.frame, round(e.time_frames, 6)) for e in v.events]).encode())
    assert h.hexdigest() == V1_HASH


def test_determinism_by_seed():
    a, b, c = generate_v2(3, V2_TINY), generate_v2(3, V2_TINY), generate_v2(4, V2_TINY)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.flow_fwd, b.flow_fwd)
    assert a.events == b.events and a.fps == b.fps
    assert a.frames.shape != c.frames.shape or not np.array_equal(a.frames, c.frames)


def test_fps_and_sizes_honoured():
    fps, sizes = set(), set()
    for s in range(12):
        v = generate_v2(s, dataclasses.replace(V2_TINY, codec_prob=0.0, blur_prob=0.0))
        n, h, w = v.frames.shape[:3]
        assert V2_TINY.fps[0] <= v.fps <= V2_TINY.fps[1] and v.fps == int(v.fps)
        lo, hi = V2_TINY.duration
        assert max(V2_TINY.min_frames, round(lo * v.fps)) <= n <= max(V2_TINY.min_frames, round(hi * v.fps))
        assert (h, w) in V2_TINY.sizes and v.flow_fwd.shape == (n - 1, h, w, 2)
        assert all(0 <= e.frame < n and 0 <= e.x < w and 0 <= e.y < h for e in v.events)
        fps.add(v.fps)
        sizes.add((h, w))
    assert len(fps) >= 6 and len(sizes) >= 2
    assert generate_v2(0, dataclasses.replace(V2_TINY, fps=(10, 10))).fps == 10.0


def _normal(name):
    return {"floor": (0.0, -1.0), "ceiling": (0.0, 1.0), "wall_left": (1.0, 0.0), "wall_right": (-1.0, 0.0)}[name]


def test_events_are_exact_velocity_reversals():
    """At each isolated body-wall event the hitting body approaches the surface at the frame before the
    contact instant and leaves it at the frame after (the physics record), and frame = round(time)."""
    checked = 0
    for s in range(8):
        v, _, traj = generate_v2(s, V2_TINY, clean=True, with_record=True)
        names = [o["name"] for o in v.metadata["objects"]]
        for e, c in zip(v.events, traj.events, strict=True):
            assert e.frame == round(c.time) and e.time_frames == c.time
            if e.objects[1] not in ("floor", "ceiling", "wall_left", "wall_right"):
                continue
            i = names.index(e.objects[0])
            k0 = int(np.floor(c.time))
            others = [d for d in traj.events if d is not c and i in (d.a, d.b) and abs(d.time - c.time) < 1.5]
            if others or k0 + 1 >= len(traj.vel) or c.time == k0:
                continue
            n = np.array(_normal(e.objects[1]))
            assert traj.vel[k0, i] @ n < 0 < traj.vel[k0 + 1, i] @ n, (s, e)
            checked += 1
    assert checked >= 10


def _edges(labels):
    return ndimage.maximum_filter(labels, 3) != ndimage.minimum_filter(labels, 3)


def test_camera_motion_is_in_the_exact_flow():
    """Warping frame k+1 by the exact forward flow reproduces frame k away from occlusions under zoom, pan
    and shake; the camera-free (world) flow would not."""
    for s in (1, 2):
        v, labels, _ = generate_v2(s, MOVING_CAMERA, clean=True, with_record=True)
        zoom = np.array(v.metadata["v2"]["camera"]["zoom"])
        assert np.ptp(zoom) > 1e-3
        n, h, w = v.frames.shape[:3]
        jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        errs, base = [], []
        for k in range(n - 1):
            f = v.flow_fwd[k]
            mx, my = jj + f[..., 0], ii + f[..., 1]
            r = np.clip(np.rint(my), 0, h - 1).astype(int)
            c = np.clip(np.rint(mx), 0, w - 1).astype(int)
            keep = (mx >= 2) & (mx <= w - 3) & (my >= 2) & (my <= h - 3) & (labels[k + 1][r, c] == labels[k])
            keep &= ~_edges(labels[k]) & ~_edges(labels[k + 1])[r, c]
            keep[:2] = keep[-2:] = False
            keep[:, :2] = keep[:, -2:] = False
            nxt = v.frames[k + 1].astype(np.float32)
            warped = cv2.remap(nxt, mx, my, cv2.INTER_LINEAR)
            errs.append(np.abs(warped - v.frames[k]).max(-1)[keep])
            base.append(np.abs(nxt - v.frames[k]).max(-1)[keep])
        err, base = np.concatenate(errs), np.concatenate(base)
        assert err.size > 0.3 * (n - 1) * h * w
        assert err.mean() < 1.5 and err.mean() < 0.3 * base.mean(), (s, err.mean(), base.mean())


def test_labelled_negatives_have_no_events():
    """Hard negatives (floor bodies rolling, sliding or resting, shaky camera) have no events; so do scenes
    made only of floor bodies."""
    motions = set()
    for s in range(6):
        v = generate_v2(s, V2_TINY, negative=True, clean=True)
        assert v.events == [] and v.metadata["v2"]["negative"]
        assert not any(o["name"].startswith("rod") for o in v.metadata["objects"])
        motions |= {b["motion"] for b in v.metadata["v2"]["floor_bodies"]}
        cam = np.array(v.metadata["v2"]["camera"]["offset_px"])
        assert np.abs(np.diff(cam, axis=0)).max() > 0.05  # the camera does move
    assert {"roll", "slide"} <= motions


@pytest.mark.parametrize("pair", [("disc", "disc"), ("box", "disc"), ("box", "box")])
def test_floor_bodies_at_the_speed_limit_never_touch(pair):
    """Two floor bodies rolling / sliding toward each other at the limit stop apart (no event); at twice the
    limit they collide audibly, so the check can fail."""
    scene = scene_config_for(V2Config(), 120, 160, 120, 30.0)
    const = physics_constants(scene)
    room, g = const["room"], const["gravity"]
    x0, _, x1, y1 = room
    r = 0.1 * scene.unit
    events = {}
    for factor in (1.0, 2.0):
        bodies, xs = [], (x0 + 0.3 * (x1 - x0), x0 + 0.7 * (x1 - x0))
        for i, (kind, x, d) in enumerate(zip(pair, xs, (1.0, -1.0), strict=True)):
            mu = scene.rolling_friction if kind == "disc" else scene.friction
            v = factor * floor_speed_limit(x, r, d, [(xs[1 - i], r)], room, mu, g)
            bodies.append(Body(f"{kind}{i}", kind, r, r, 0.7, mu, x, y1 - r, d * v, 0.0))
        events[factor] = simulate(bodies, room, 120, g, const["audible"]).events
    assert events[1.0] == [] and len(events[2.0]) >= 1


def test_rods_and_floor_bodies_appear_and_rods_strike():
    cfg = dataclasses.replace(V2_TINY, rod_prob=1.0, ground_prob=1.0, negative_prob=0.0)
    rod_events = 0
    for s in range(4):
        v = generate_v2(s, cfg, clean=True)
        rods = [o["name"] for o in v.metadata["objects"] if o["name"].startswith("rod")]
        assert rods and v.metadata["v2"]["floor_bodies"]
        rod_events += sum(rods[0] in e.objects for e in v.events)
    assert rod_events >= 2


def test_resize_flow_scales_components():
    flow = np.zeros((2, 48, 64, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0
    out = resize_flow(flow, 32, 32)
    assert out.shape == (2, 32, 32, 2)
    np.testing.assert_allclose(out[..., 0], 3.0 * 32 / 64, rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], -2.0 * 32 / 48, rtol=1e-6)


def test_v2_tiny_builder(tmp_path, capsys):
    """The v2 build: its splits, per-video fps, contact points in the frame; the flow in one side file per split
    (the records hold none), read back as the flow of the stored frames; and the input benchmark reads it."""
    from benchmark_scripts import load_benchmark

    from input_pipeline import flow as flow_lib
    from input_pipeline.datasets import synthetic_collisions
    from input_pipeline.jpeg_frames import DecodedSource, flow_file_name

    builder = synthetic_collisions.build_dataset(str(tmp_path), "v2_tiny", workers=1)
    raw = builder.raw_dir
    assert raw.endswith("v2_tiny")
    assert "flow_fwd" not in builder.info.features and "flow_file" in builder.info.features
    fps = set()
    for split, n in builder.builder_config.split_sizes:
        source = DecodedSource(builder.as_data_source(split))
        assert len(source) == n
        fields = 0
        for ex in source:
            assert ex["frames"].shape[1:] == (32, 32, 3) and ex["flow_fwd"].shape[0] == ex["frames"].shape[0] - 1
            assert np.all((ex["event_xy"] >= 0) & (ex["event_xy"] <= 32))
            fps.add(float(ex["fps"]))
            fwd, bwd = flow_lib.estimate_flow(np.asarray(ex["frames"]), "dis")
            np.testing.assert_array_equal(ex["flow_fwd"], fwd)
            np.testing.assert_array_equal(ex["flow_bwd"], bwd)
            fields += 2 * len(fwd)
        side_file = os.path.join(builder.data_dir, flow_file_name(split))
        assert os.path.getsize(side_file) == fields * 32 * 32 * 2 * 2  # float16 (u, v): nothing else in it
    assert len(fps) > 1
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "default_detector.py:smoke")
    args = ["--config", config, "--data-dir", str(tmp_path), "--batch", "2", "--num-frames", "8", "--batches", "1"]
    assert load_benchmark("input_pipeline").main(["--single", "all", "--warmup", "0", *args]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["dataset"] == "synthetic_collisions:v2_tiny" and record["dataset_version"] == "2.0.0"
    assert record["clips_per_s"] > 0 and record["batch"] == 2 and record["num_frames"] == 8


def test_v2_sizes_share_their_renders():
    # v2 renders at its own native size and is resized when prepared: v2_64, v2_112 and v2 (a longer prefix of
    # the same seeds) read one raw folder; v1 renders at the config's size, so each config has its own.
    from input_pipeline.datasets.synthetic_collisions import config_for, renders_name

    assert {renders_name(config_for(n)) for n in ("v2", "v2_64", "v2_112")} == {"v2"}
    assert renders_name(config_for("v2_tiny")) == "v2_tiny"
    assert renders_name(config_for("small")) == renders_name(config_for("small", "farneback")) == "small"
    assert renders_name(config_for("paper")) == "paper"
    assert renders_name(config_for("v2_64_240", "tvl1-jax")) == "v2"
    # Another preset renders into its own folder; its own seeds name it too.
    assert renders_name(config_for("v2_64_thud")) == "v2_thud_seed50000"
    assert renders_name(config_for("v2_64_jabs")) == "v2_jabs_seed60000"


def test_a_config_reads_only_its_prefix_of_shared_renders(tmp_path):
    # v2_64_240 shares v2_64's renders: of the generator's renders it prepares train_00000..00239 only, however
    # many the folder holds; any other file in the folder is still prepared (or reported when it is bad).
    from input_pipeline.datasets import synthetic_collisions

    builder = synthetic_collisions.SyntheticCollisions(
        config=synthetic_collisions.config_for("v2_64_240"), data_dir=str(tmp_path / "tfds"), raw_dir=str(tmp_path)
    )
    split_dir = tmp_path / "v2" / "train"
    split_dir.mkdir(parents=True)
    for stem in ("train_00000", "train_00001", "train_00239", "train_00240", "train_00719", "my_clip"):
        (split_dir / f"{stem}.mp4").write_bytes(b"")
        (split_dir / f"{stem}.json").write_text("{}")
    (split_dir / "train_00002.json").write_text("{}")  # its video is missing: named, not prepared
    (split_dir / "train_00500.json").write_text("{}")  # a larger config's render in progress: not ours
    paths = builder._video_paths("train")
    expected = ["my_clip.mp4", "train_00000.mp4", "train_00001.mp4", "train_00239.mp4"]
    assert [os.path.basename(p) for p in paths] == expected
    assert len(builder.skipped["train"]) == 1 and "train_00002.mp4: no such file" in builder.skipped["train"][0]


def test_contact_sheet(tmp_path):
    from input_pipeline.synthetic.preview import save_contact_sheet

    out = save_contact_sheet(tmp_path / "sheet.png", variant="v2_tiny", num=2, seed=0)
    img = cv2.imread(out)
    assert img is not None and img.shape[0] > 50 and img.shape[1] > 200
    assert cv2.imread(save_contact_sheet(tmp_path / "thud.png", variant="v2_thud", num=1, seed=3)) is not None
    with pytest.raises(ValueError):
        save_contact_sheet(tmp_path / "x.png", variant="nope")


def test_config_keeps_contacts_in_view():
    with pytest.raises(ValueError):
        dataclasses.replace(V2_TINY, border=0.1, zoom_base=(0.1, 0.2))


def test_codec_roundtrip_is_reproducible_and_lossy():
    from input_pipeline.synthetic.randomize import codec_roundtrip

    # A clip on which libx264's default lookahead / mbtree rate control gave a different file on each call.
    frames = generate_v2(2_000_005, dataclasses.replace(V2Config(), codec_prob=0.0)).frames
    outs = [codec_roundtrip(frames, 26, 26) for _ in range(3)]
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    assert outs[0].shape == frames.shape and 0 < np.abs(outs[0].astype(int) - frames).mean() < 10


def test_ta2net_preview_synthetic(tmp_path, capsys):
    from ta2net_jax.cli import main as cli

    out = tmp_path / "sheet.png"
    assert cli.main(["preview-synthetic", "--variant", "v2_tiny", "--num", "2", "--out", str(out)]) == 0
    assert (
        out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "contact sheet of 2 v2_tiny samples" in capsys.readouterr().out
    )
    assert cli.main(["preview-synthetic", "--variant", "nope", "--out", str(tmp_path / "x.png")]) == 1


# sha256 of generate_v2(6, V2_TINY, clean=True) (frames, forward flow, events), measured on commit 1daa9b3
# (before the thud preset): presets without thuds must render exactly as before.
V2_TINY_HASH = "9c625556d566188900be6bf7c5c1b56232fe8df003a004931aa9e0093a77ace2"


def test_v2_without_thuds_unchanged():
    v = generate_v2(6, V2_TINY, clean=True)
    h = hashlib.sha256(v.frames.tobytes())
    h.update(v.flow_fwd.tobytes())
    h.update(repr([(e.frame, round(e.time_frames, 6), e.objects) for e in v.events]).encode())
    assert h.hexdigest() == V2_TINY_HASH
    assert "thuds" not in v.metadata["v2"]


def test_thuds_are_labelled_impacts_that_stop_the_body():
    """A body of dead material hits the floor at the same instant as its bouncing twin (same seed), the impact
    is an event, and it leaves the floor at most `thud_restitution`'s top times its approach speed, where the
    default material (restitution ≥ 0.55) bounces back."""
    thud = dataclasses.replace(V2_TINY, thud_prob=1.0)
    checked = 0
    for s in range(10):
        v0, _, t0 = generate_v2(s, V2_TINY, clean=True, negative=False, with_record=True)
        v1, _, t1 = generate_v2(s, thud, clean=True, negative=False, with_record=True)
        names = [o["name"] for o in v1.metadata["objects"]]
        assert sorted(v1.metadata["v2"]["thuds"]) == sorted(names)
        if not t1.events or v1.events[0].objects[1] != "floor":
            continue
        first, twin = t1.events[0], t0.events[0]
        assert (first.a, first.time) == (twin.a, twin.time) and v1.events[0].frame == round(first.time)
        k0 = int(np.floor(first.time))
        if k0 + 1 >= len(t1.vel) or any(abs(d.time - first.time) < 1.5 for d in t1.events[1:]):
            continue
        approach = t1.vel[k0, first.a, 1]  # down (+y) before the contact, the same for both materials
        assert approach > 0 and t0.vel[k0, first.a, 1] == approach
        assert -t1.vel[k0 + 1, first.a, 1] <= thud.thud_restitution[1] * approach + 1e-6, s
        assert -t0.vel[k0 + 1, first.a, 1] >= 0.3 * approach, s  # the twin bounces back up
        checked += 1
    assert checked >= 3


def test_jabs_turn_abruptly_in_the_air_and_are_never_events():
    """A jab sweeps at constant speed and turns within one frame at each end of its line; it changes the frames
    and the flow, and the events (the physics) are those of the same seed without jabs."""
    from input_pipeline.synthetic.v2 import _Extras

    jabs = dataclasses.replace(V2_TINY, jab_prob=1.0)
    scene = scene_config_for(jabs, 64, 64, 60, 30.0)
    shapes = [
        s for s in _Extras(np.random.default_rng(0), jabs, False).overlays(scene, 0.5) if s.name.startswith("jab")
    ]
    assert shapes
    for shape in shapes:
        step = np.diff(shape.centre, axis=0)
        speed = np.linalg.norm(step, axis=1)
        turns = np.flatnonzero(np.einsum("ij,ij->i", step[1:], step[:-1]) < 0)
        assert turns.size >= 1  # 60 frames at 1 u/s over ≤ 0.3 u: several turns
        steady = np.setdiff1d(np.arange(len(speed)), np.concatenate([turns, turns + 1]))
        assert np.allclose(speed[steady], speed[steady].max(), rtol=1e-6)  # constant speed between turns
    seen = 0
    for s in range(6):
        v0, v1 = generate_v2(s, V2_TINY, clean=True), generate_v2(s, jabs, clean=True)
        assert v1.events == v0.events and not any(o.startswith("jab") for e in v1.events for o in e.objects)
        if v1.metadata["v2"]["jabs"]:
            seen += 1
            assert not np.array_equal(v1.frames, v0.frames) and not np.array_equal(v1.flow_fwd, v0.flow_fwd)
    assert seen >= 4
