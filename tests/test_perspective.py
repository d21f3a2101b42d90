"""The held-out perspective scenes (input_pipeline/synthetic/perspective.py): contact instants are the exact ones
of the physics, what is drawn is where the camera says, the same seed gives the same video, and a written set
is what `ta2net eval-videos` reads."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

from input_pipeline.synthetic import perspective as p, perspective_render as r
from ta2net_jax.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def _ball(y, radius=0.1, vy=0.0, restitution=0.7, x=0.0, z=2.0, **kw):
    position, velocity = np.array([x, y, z], float), np.array([0.0, vy, 0.0])
    return p._Ball(position, velocity, radius, np.array([0.8, 0.2, 0.2]), restitution, **kw)


def _contacts(balls, duration_s=2.0, fps=50.0):
    return p._simulate(balls, duration_s, fps, lambda index: None)


def test_a_dropped_ball_lands_and_bounces_at_the_exact_instants():
    height, radius, e = 1.0, 0.1, 0.7
    contacts = _contacts([_ball(height, radius, restitution=e)], duration_s=3.0)
    first = math.sqrt(2 * (height - radius) / p.GRAVITY)
    speed = p.GRAVITY * first
    second = first + 2 * e * speed / p.GRAVITY  # the rebound at e·v flies 2·e·v/g
    times = [c[0] for c in contacts]
    assert times[0] == pytest.approx(first, abs=2 * p.STEP_S)
    assert times[1] == pytest.approx(second, abs=4 * p.STEP_S)
    assert all(c[2] == "ground" for c in contacts)
    np.testing.assert_allclose(contacts[0][1], [0.0, 0.0, 2.0], atol=1e-6)  # under the ball, on the ground
    # Bounce k lands at speed·e^k: audible while that is >= AUDIBLE_SPEED (4.2 m/s → 6 bounces); later ones
    # are too slow, and once a rebound is below REST_SPEED the ball rolls without a sound.
    assert len(contacts) == len([k for k in range(30) if speed * e**k >= p.AUDIBLE_SPEED]) == 6


def test_slow_touches_rolling_and_resting_are_silent():
    # Dropped from 1 cm: lands at 0.44 m/s, below the audible speed.
    assert _contacts([_ball(0.11, 0.1)]) == []
    # Rolling into a resting ball at 0.4 m/s: a touch, not a hit.
    roller = _ball(0.1, x=-0.5, rolling=True)
    roller.vel[:] = [0.4, 0.0, 0.0]
    assert _contacts([roller, _ball(0.1, x=0.0, static=True)]) == []


def test_a_ball_dropped_on_a_clutter_ball_hits_it_where_and_when_they_touch():
    clutter = _ball(0.2, 0.2, static=True)
    falling = _ball(1.0, 0.1)
    contacts = _contacts([clutter, falling], duration_s=0.5)
    t, point, kind, speed = contacts[0]
    assert kind == "clutter" and speed == pytest.approx(math.sqrt(2 * p.GRAVITY * 0.5), rel=1e-3)
    assert t == pytest.approx(math.sqrt(2 * (1.0 - 0.2 - 0.3) / p.GRAVITY), abs=2 * p.STEP_S)
    np.testing.assert_allclose(point, [0.0, 0.4, 2.0], atol=1e-3)  # the top of the clutter ball


def test_the_renderer_draws_a_ball_where_the_camera_projects_it():
    rng = np.random.default_rng(0)
    camera = r.Camera(rng, 60, 80)
    camera.shake = 0.0
    look = r.Look(
        ground_a=np.array([0.5, 0.5, 0.5]),
        ground_b=np.array([0.4, 0.4, 0.4]),
        tile=0.3,
        stripes=False,
        sky_low=np.array([0.9, 0.9, 0.9]),
        sky_high=np.array([0.6, 0.7, 0.9]),
        light=np.array([0.0, 1.0, 0.0]),
        ambient=0.3,
    )
    ball = _ball(0.3, 0.1, x=0.1, z=1.8)
    dirs = camera.rays(supersample=1)
    empty = r.render(camera, look, [], 0.0, dirs)
    drawn = r.render(camera, look, [ball], 0.0, dirs)
    x, y = camera.project(ball.pos, 0.0)
    changed = np.abs(drawn - empty).sum(-1) > 0.05
    assert changed[int(y), int(x)]
    ys, xs = np.nonzero(changed)
    # The ball (and its shadow right below it) and nothing else: within its projected radius of the centre.
    reach = camera.focal * 0.1 / 1.8 * 1.2 + 2
    assert np.all(np.abs(xs - x) <= reach)
    assert ys.min() >= y - reach


def test_same_seed_same_video_and_events_inside_the_picture():
    a = p.generate_perspective(7, supersample=1, size=(36, 48), duration_s=1.2)
    b = p.generate_perspective(7, supersample=1, size=(36, 48), duration_s=1.2)
    assert a.frames.shape == (int(round(1.2 * a.fps)), 36, 48, 3) and a.frames.dtype == np.uint8
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.events == b.events
    assert all(0 <= e.x < 48 and 0 <= e.y < 36 and e.frame == round(e.time_s * a.fps) for e in a.events)
    assert np.ptp(a.frames) > 50  # a picture, not a blank
    assert p.generate_perspective(7, size=(36, 48), duration_s=1.2, render_frames=False).events == a.events
    assert all(e.speed >= p.AUDIBLE_SPEED for e in a.events)


def test_a_written_set_is_what_eval_videos_reads(tmp_path, monkeypatch):
    original = p.generate_perspective

    def small(seed, **kw):  # the same scene, 36×48 and 1.5 s long
        return original(seed, supersample=1, size=(36, 48), duration_s=1.5, **kw)

    # The first scene that lands a ball within 1.5 s (found without rendering).
    seed = next(s for s in range(p.FIRST_SEED, p.FIRST_SEED + 20) if small(s, render_frames=False).events)
    video = small(seed, render_frames=False)
    out = tmp_path / "set"
    monkeypatch.setattr(p, "generate_perspective", small)
    labels_path = p.write_set(str(out), 1, first_seed=seed, progress=False)
    labels = json.load(open(labels_path))
    entry = labels["perspective_0000.mp4"]
    assert entry["frames"] == sorted({e.frame for e in video.events}) and entry["seed"] == seed
    status = cli.main(
        ["eval-videos", str(out), "--labels", labels_path, "--method", "reference", "--out-dir", str(tmp_path / "ev")]
    )
    assert status == 0
    results = json.load(open(tmp_path / "ev" / "results.json"))
    (scored,) = results["detectors"]["reference"]["temporal_per_video"]
    assert scored["id"] == "perspective_0000.mp4" and scored["num_gt"] >= 1


def test_benchmark_renders_validation_scenes_apart_from_the_test_scenes(tmp_path, monkeypatch):
    """`perspective_heldout.py --split validation --methods ""` renders only, from the validation seeds, which
    `ta2net calibrate` tunes on; the test scenes stay out of every choice."""
    import sys

    script = load_benchmark("perspective_heldout")
    assert script.SPLITS["validation"][0] == p.VALIDATION_FIRST_SEED >= p.FIRST_SEED + 10_000
    original = p.generate_perspective
    monkeypatch.setattr(
        p, "generate_perspective", lambda seed, **kw: original(seed, supersample=1, size=(36, 48), duration_s=0.5, **kw)
    )
    monkeypatch.setattr(
        sys, "argv", ["x", "--split", "validation", "--methods", "", "--num-videos", "1", "--out", str(tmp_path)]
    )
    script.main()
    labels = json.load(open(tmp_path / "videos" / "labels.json"))
    assert [e["seed"] for e in labels.values()] == [p.VALIDATION_FIRST_SEED]
    assert (tmp_path / "sheet.png").exists() and not list(tmp_path.glob("eval_*"))


def test_perspective_tiny_builder_is_a_training_source(tmp_path):
    # The generator as a dataset (`perspective_64`'s small stand-in): events in the resized frames' pixels at
    # the frames the generator labelled, per-video fps, DIS flow, no exact-flow file; seeds apart from the
    # held-out test and calibration scenes.
    from input_pipeline.datasets import synthetic_collisions, synthetic_configs as sc, synthetic_work
    from input_pipeline.jpeg_frames import DecodedSource

    # Each set's seeds are consecutive from its first: 100,000 apart, none can reach the next.
    assert p.FIRST_SEED + 100_000 <= p.VALIDATION_FIRST_SEED
    assert p.VALIDATION_FIRST_SEED + 100_000 <= sc.PERSPECTIVE_TRAIN_SEED < sc.PERSPECTIVE_TRAIN_SEED + 1_000_000
    assert synthetic_work.SPLIT_SEED_OFFSET["validation"] == 1_000_000
    assert sc.renders_name(sc.config_for("perspective_64")) == "perspective_seed7200000"
    builder = synthetic_collisions.build_dataset(str(tmp_path), "perspective_tiny", workers=1)
    scene = synthetic_work.PERSPECTIVE_SCENES["tiny"]
    for split, n in builder.builder_config.split_sizes:
        source = DecodedSource(builder.as_data_source(split))
        assert len(source) == n
        for i, ex in enumerate(sorted(source, key=lambda e: e["id"])):
            seed = sc.PERSPECTIVE_TRAIN_SEED + synthetic_work.SPLIT_SEED_OFFSET[split] + i
            video = p.generate_perspective(seed, supersample=1, scale=scene.scale, duration_s=1.0)
            assert ex["frames"].shape == (len(video.frames), 32, 32, 3) and float(ex["fps"]) == video.fps
            assert ex["flow_fwd"].shape == (len(video.frames) - 1, 32, 32, 2)
            assert list(ex["event_frames"]) == [e.frame for e in video.events]
            height, width = video.frames.shape[1:3]
            expected_xy = [[e.x * 32 / width, e.y * 32 / height] for e in video.events]
            np.testing.assert_allclose(ex["event_xy"].reshape(-1, 2), np.reshape(expected_xy, (-1, 2)), rtol=1e-5)
            stem = os.path.join(builder.raw_dir, split, ex["id"].decode())
            assert os.path.exists(stem + ".mp4") and not os.path.exists(stem + ".flow.npz")
