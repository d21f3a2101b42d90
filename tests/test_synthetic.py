"""Synthetic collision videos: determinism, event ground truth, physics, exact optical flow, scaling."""

from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from input_pipeline.synthetic import (
    CollisionEvent,
    SceneConfig,
    SyntheticVideo,
    events_from_json,
    events_to_json,
    generate_video,
)
from input_pipeline.synthetic.generate import generate_with_labels, physics_constants
from input_pipeline.synthetic.physics import WALLS, Body, sample_bodies, simulate

DEFAULT = SceneConfig()
CLEAN = SceneConfig(flicker_prob=0.0, noise_prob=0.0)
NO_DISTRACTORS = SceneConfig(slide_prob=0.0, orbit_prob=0.0, pan_prob=0.0, flicker_prob=0.0, noise_prob=0.0)
ALL_DISTRACTORS = SceneConfig(slide_prob=1.0, orbit_prob=1.0, pan_prob=1.0, flicker_prob=1.0, noise_prob=1.0)


@pytest.fixture(scope="module")
def videos() -> list[SyntheticVideo]:
    return [generate_video(s) for s in range(30)]


def _event_key(v):
    return [(e.frame, round(e.time_frames, 9), e.objects, round(e.impact_speed, 9)) for e in v.events]


def test_determinism():
    a, b, c = generate_video(5), generate_video(5), generate_video(6)
    for name in ("frames", "flow_fwd", "flow_bwd"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.events == b.events
    assert json.dumps(a.metadata, sort_keys=True) == json.dumps(b.metadata, sort_keys=True)
    assert not np.array_equal(a.frames, c.frames)
    assert _event_key(a) != _event_key(c)


def test_shapes_dtypes_and_json(videos):
    n, h, w = DEFAULT.num_frames, DEFAULT.height, DEFAULT.width
    for v in videos[:5]:
        assert v.frames.shape == (n, h, w, 3) and v.frames.dtype == np.uint8
        assert v.flow_fwd.shape == v.flow_bwd.shape == (n - 1, h, w, 2)
        assert v.flow_fwd.dtype == v.flow_bwd.dtype == np.float32
        assert np.isfinite(v.flow_fwd).all() and np.isfinite(v.flow_bwd).all()
        assert v.fps == DEFAULT.fps and isinstance(v.seed, int)
        meta = json.loads(json.dumps(v.metadata))
        assert SceneConfig.from_dict(meta["config"]) == DEFAULT
        assert {o["kind"] for o in meta["objects"]} <= {"disc", "box"} and 1 <= len(meta["objects"]) <= 3
        assert all(len(o["colour"]) == 3 and len(o["trajectory_px"]) == n for o in meta["objects"])
        assert set(meta["distractors"]["present"]) == {"slide", "orbit", "pan", "flicker", "noise"}
        assert events_from_json(json.loads(json.dumps(events_to_json(v.events)))) == v.events


def test_events_well_formed(videos):
    n, h, w = DEFAULT.num_frames, DEFAULT.height, DEFAULT.width
    for v in videos:
        names = {o["name"] for o in v.metadata["objects"]}
        times = [e.time_frames for e in v.events]
        assert times == sorted(times)
        for e in v.events:
            assert isinstance(e, CollisionEvent)
            assert 0.0 <= e.time_frames <= n - 1 and e.frame == round(e.time_frames)
            assert 0.0 < e.x < w and 0.0 < e.y < h, e
            assert e.objects[0] in names and (e.objects[1] in names or e.objects[1] in WALLS), e
            if e.objects[1] in names:  # pairs name the lower object index first
                assert int(e.objects[0][-1]) < int(e.objects[1][-1])
            assert e.impact_speed > v.metadata["audible_speed_px_per_frame"]


def test_event_statistics(videos):
    counts = np.array([len(v.events) for v in videos])
    times = np.concatenate([[e.time_frames for e in v.events] for v in videos])
    assert 5.0 <= counts.mean() <= 12.0, counts
    assert (counts >= 1).all()
    edge = (times < 1.5) | (times > DEFAULT.num_frames - 2.5)
    assert edge.mean() < 0.05
    # Spread over the clip, not all in the first bounce.
    assert (times > DEFAULT.num_frames / 2).mean() > 0.2


def _sim(seed, cfg=DEFAULT):
    const = physics_constants(cfg)
    bodies = sample_bodies(np.random.default_rng(seed), cfg, const["room"])
    traj = simulate(bodies, const["room"], cfg.num_frames, const["gravity"], const["audible"], cfg.substeps)
    return bodies, traj


def test_physics_bounces_and_room():
    x0, y0, x1, y1 = physics_constants(DEFAULT)["room"]
    n_floor = 0
    for seed in range(30):
        bodies, tr = _sim(seed)
        hx = np.array([b.hx for b in bodies])
        hy = np.array([b.hy for b in bodies])
        p = tr.pos
        assert (p[..., 0] - hx >= x0 - 1e-6).all() and (p[..., 0] + hx <= x1 + 1e-6).all()
        assert (p[..., 1] - hy >= y0 - 1e-6).all() and (p[..., 1] + hy <= y1 + 1e-6).all()
        for c in tr.events:
            e_a = bodies[c.a].restitution
            if c.b == "floor":
                n_floor += 1
                assert c.vel_a_before[1] > 0 > c.vel_a_after[1]  # vertical velocity reverses
                assert c.vel_a_after[1] == pytest.approx(-e_a * c.vel_a_before[1], rel=1e-9)
                assert c.vel_a_after[0] == pytest.approx(c.vel_a_before[0])
            elif c.b in ("wall_left", "wall_right"):
                assert c.vel_a_after[0] == pytest.approx(-e_a * c.vel_a_before[0], rel=1e-9)
            elif c.b == "ceiling":
                assert c.vel_a_before[1] < 0 < c.vel_a_after[1]
            else:  # body pair: normal relative velocity reverses, scaled by the product of restitutions
                nx, ny = c.normal
                rel = lambda va, vb, nx=nx, ny=ny: (va[0] - vb[0]) * nx + (va[1] - vb[1]) * ny
                before, after = rel(c.vel_a_before, c.vel_b_before), rel(c.vel_a_after, c.vel_b_after)
                assert before < 0 < after
                assert after == pytest.approx(-e_a * bodies[c.b].restitution * before, rel=1e-9)
    assert n_floor > 50


def test_single_drop_matches_analytic_bounces():
    """A disc dropped from rest: exact bounce instants, speeds; it then settles silently on the floor."""
    room, g, audible, e, r = (0.0, 0.0, 64.0, 64.0), 0.5, 1.0, 0.8, 4.0
    y_start = 10.0
    disc = Body("disc0", "disc", r, r, e, 0.06, 32.0, y_start, 0.0, 0.0)
    tr = simulate([disc], room, 120, g, audible, substeps=20)
    v = math.sqrt(2 * g * (64.0 - r - y_start))
    t = math.sqrt(2 * (64.0 - r - y_start) / g)
    expected = []
    while v > audible:
        expected.append((t, v))
        v *= e
        t += 2 * v / g
    assert [c.b for c in tr.events] == ["floor"] * len(expected)
    for c, (t_n, v_n) in zip(tr.events, expected):
        assert c.time == pytest.approx(t_n, abs=1e-6)
        assert c.speed == pytest.approx(v_n, rel=1e-6)
        assert c.x == pytest.approx(32.0) and c.y == 64.0
    last = int(math.ceil(expected[-1][0] + 2 * e * expected[-1][1] / g)) + 2
    assert np.allclose(tr.pos[last:, 0, 1], 64.0 - r) and np.allclose(tr.vel[last:, 0], 0.0, atol=1e-9)


def test_distractors_never_produce_events():
    for seed in range(8):
        plain, busy = generate_video(seed, NO_DISTRACTORS), generate_video(seed, ALL_DISTRACTORS)
        assert all(busy.metadata["distractors"]["present"].values())
        assert not any(plain.metadata["distractors"]["present"].values())
        names = {s["name"] for s in busy.metadata["distractors"]["shapes"]}
        assert names and not names & {o for e in busy.events for o in e.objects}
        assert _event_key(plain) == _event_key(busy)
        # Same physics, so event positions differ only by the camera pan.
        pan = np.array(busy.metadata["pan_px"])
        for a, b in zip(plain.events, busy.events):
            assert abs(a.x - b.x) <= np.abs(pan).max() + 1e-6


def _edges(lab):
    g = np.zeros(lab.shape, bool)
    d = lab[1:] != lab[:-1]
    g[1:] |= d
    g[:-1] |= d
    d = lab[:, 1:] != lab[:, :-1]
    g[:, 1:] |= d
    g[:, :-1] |= d
    return ndimage.binary_dilation(g)


def _interior_warp_stats(v, labels):
    """Warp errors (levels) and forward-backward residuals (px) on pixels whose surface is the same,
    away from surface boundaries, in both frames."""
    n, h, w = v.frames.shape[:3]
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    errs, fbs, frac = [], [], []
    for k in range(n - 1):
        f, b = v.flow_fwd[k], v.flow_bwd[k]
        mx, my = jj + f[..., 0], ii + f[..., 1]
        r, c = np.clip(np.rint(my), 0, h - 1).astype(int), np.clip(np.rint(mx), 0, w - 1).astype(int)
        keep = (
            (mx >= 2)
            & (mx <= w - 3)
            & (my >= 2)
            & (my <= h - 3)
            & (jj >= 2)
            & (jj <= w - 3)
            & (ii >= 2)
            & (ii <= h - 3)
            & (labels[k + 1][r, c] == labels[k])
            & ~_edges(labels[k])
            & ~_edges(labels[k + 1])[r, c]
        )
        warped = cv2.remap(v.frames[k + 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        errs.append(np.abs(warped - v.frames[k]).max(-1)[keep])
        back = cv2.remap(b, mx, my, cv2.INTER_LINEAR)
        fbs.append(np.abs(f + back).max(-1)[keep])
        frac.append(keep.mean())
    return np.concatenate(errs), np.concatenate(fbs), float(np.mean(frac))


@pytest.fixture(scope="module")
def clean_with_labels():
    out = [generate_with_labels(s, dataclasses.replace(CLEAN, pan_prob=0.0)) for s in range(2)]
    return out + [generate_with_labels(s, dataclasses.replace(CLEAN, pan_prob=1.0)) for s in range(2, 4)]


def test_flow_warp_reproduces_frames(clean_with_labels):
    for v, labels in clean_with_labels:
        err, _, frac = _interior_warp_stats(v, labels)
        assert frac > 0.4
        assert err.mean() < 1.0 and np.percentile(err, 99) < 6.0, (v.seed, err.mean(), np.percentile(err, 99))


def test_flow_forward_backward_consistency(clean_with_labels):
    for v, labels in clean_with_labels:
        _, fb, _ = _interior_warp_stats(v, labels)
        assert np.percentile(fb, 99.9) < 0.05 and fb.max() < 0.2, (v.seed, fb.max())


def test_flow_conventions_background_and_objects():
    cfg = dataclasses.replace(NO_DISTRACTORS, pan_prob=1.0)
    v, labels = generate_with_labels(3, cfg)
    pan = np.array(v.metadata["pan_px"])
    dpan = np.diff(pan, axis=0)
    for k in range(0, v.frames.shape[0] - 1, 7):
        room = labels[k] == 1
        np.testing.assert_allclose(v.flow_fwd[k][room], np.broadcast_to(-dpan[k], (room.sum(), 2)), atol=2e-3)
        room1 = labels[k + 1] == 1
        np.testing.assert_allclose(v.flow_bwd[k][room1], np.broadcast_to(dpan[k], (room1.sum(), 2)), atol=2e-3)
    # Objects move rigidly: a surface point at p (pixel centre (j + 0.5, i + 0.5)) of frame k is at
    # c[k+1] + R(angle[k+1] - angle[k]) (p - c[k]) in frame k+1 (boxes never turn; discs spin clockwise
    # on screen for a positive angle, as R acts on (x, y) with y down).
    seen = set()
    for seed in range(20):
        v, labels = generate_with_labels(seed, cfg)
        for i, obj in enumerate(v.metadata["objects"]):
            traj, ang = np.array(obj["trajectory_px"]), np.array(obj["angle_rad"])
            for k in range(0, v.frames.shape[0] - 1, 3):
                ii, jj = np.nonzero(labels[k] == 2 + i)
                if ii.size == 0:
                    continue
                c, s = math.cos(ang[k + 1] - ang[k]), math.sin(ang[k + 1] - ang[k])
                px, py = jj + 0.5 - traj[k, 0], ii + 0.5 - traj[k, 1]
                expect = np.stack(
                    [traj[k + 1, 0] + c * px - s * py - (jj + 0.5), traj[k + 1, 1] + s * px + c * py - (ii + 0.5)], -1
                )
                np.testing.assert_allclose(v.flow_fwd[k][ii, jj], expect, atol=5e-3)
                seen.add(obj["kind"])
        if seen == {"box", "disc"}:
            break
    assert seen == {"box", "disc"}


def test_scaled_config_gives_comparable_events():
    big = SceneConfig(height=112, width=112)
    small_counts, big_counts = [], []
    for seed in range(20):
        v = generate_video(seed, big)
        assert v.frames.shape == (80, 112, 112, 3)
        assert all(0 < e.x < 112 and 0 < e.y < 112 for e in v.events)
        big_counts.append(len(v.events))
        small_counts.append(len(generate_video(seed).events))
    assert abs(np.mean(big_counts) - np.mean(small_counts)) <= 0.2 * np.mean(small_counts) + 1.0


def test_preview_writes_png(tmp_path, videos):
    from input_pipeline.synthetic.preview import save_preview

    out = save_preview(videos[0], tmp_path / "sheet.png")
    data = open(out, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_config_validation():
    with pytest.raises(ValueError):
        SceneConfig(pan_amplitude=0.1, border=0.05)
    with pytest.raises(ValueError):
        SceneConfig(object_count_probs=(0.5, 0.4))
