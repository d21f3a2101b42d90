"""Spatial metrics (metrics_spatial.py) on hand-worked cases: cIoU / AUC (LVS protocol, evaluation.md §6),
pointing accuracy and polarity, synthetic boxes."""

import json
import math

import numpy as np
import pytest

from ta2net_jax.evaluation.metrics import spatial as sp


def test_ciou_hand_worked():
    # P = [[1,1],[0,0]], G = [[1,0],[1,0]]: Σ P·G = 1, ΣG = 2, Σ P·[G=0] = 1 (P[0,1]) → 1 / (2 + 1) = 1/3
    assert sp.ciou([[1, 1], [0, 0]], [[1, 0], [1, 0]]) == pytest.approx(1 / 3)
    # soft (Flickr) GT G = [[1, .5],[0, 0]], P = [[1,0],[0,1]]: Σ P·G = 1, ΣG = 1.5, Σ P·[G=0] = 1 → 1/2.5 = 0.4
    assert sp.ciou([[1, 0], [0, 1]], [[1, 0.5], [0, 0]]) == pytest.approx(0.4)
    assert sp.ciou([[1, 1], [1, 1]], [[1, 1], [1, 1]]) == 1.0
    assert sp.ciou(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_box_mask_scaling_and_flickr_consensus():
    # 4×4 image, 4×4 map: box [0,0,2,1] covers the pixel centres x ∈ {0.5, 1.5}, y = 0.5 → 2 pixels
    assert sp.box_mask([[0, 0, 2, 1]], (4, 4), size=4).sum() == 2
    # same box on an 8×8 map (×2): x centres 0.5…3.5, y centres 0.5, 1.5 → 4 × 2 = 8 pixels
    assert sp.box_mask([[0, 0, 2, 1]], (4, 4), size=8).sum() == 8
    # two overlapping 2×2 boxes on 4×4: union 7 pixels; Flickr consensus: overlap 1.0, the rest 0.5 →
    # 1 + 6 · 0.5 = 4.0
    boxes = [[0, 0, 2, 2], [1, 1, 3, 3]]
    assert sp.box_mask(boxes, (4, 4), size=4).sum() == 7
    flickr = sp.box_mask(boxes, (4, 4), size=4, mode="flickr")
    assert flickr.sum() == 4.0 and flickr[1, 1] == 1.0 and flickr[0, 0] == 0.5
    with pytest.raises(ValueError, match="x1 >= x0"):
        sp.box_mask([[3, 0, 1, 1]], (4, 4))


def test_binarize_is_strictly_above_the_median_element():
    # [[0,1],[2,3]] → min-max [0, 1/3, 2/3, 1]; sorted element [4 // 2] = 2/3; strictly above → only 1
    assert sp.binarize_heatmap(np.array([[0.0, 1], [2, 3]]), size=2).tolist() == [[0, 0], [0, 1]]
    # at 224 px about half the pixels are 1, and the bright corner is among them
    b = sp.binarize_heatmap(np.array([[0.0, 1], [2, 3]]))
    assert b.shape == (224, 224) and 0.4 < b.mean() <= 0.5 and b[-1, -1] == 1
    assert sp.binarize_heatmap(np.ones((3, 3))).sum() == 0  # a flat map points nowhere


def test_ciou_summary_hand_worked():
    # cIoUs 0.2, 0.5, 0.9, 1.0: cIoU@0.5 = 3/4. s(t) = fraction ≥ t on t = 0, .05, …, 1:
    # t = 0 … 0.2 (5 points): 1; 0.25 … 0.5 (6): 0.75; 0.55 … 0.9 (8): 0.5; 0.95, 1.0 (2): 0.25.
    # trapezoid = 0.05 · (Σ s − (s(0) + s(1)) / 2) = 0.05 · (14 − 0.625) = 0.66875; mean cIoU 0.65
    s = sp.ciou_summary([0.2, 0.5, 0.9, 1.0])
    assert s["num_samples"] == 4 and s["ciou_at_0.5"] == 0.75
    assert s["auc"] == pytest.approx(0.66875) and s["mean_ciou"] == pytest.approx(0.65)
    assert sp.ciou_summary([])["auc"] is None


def test_pointing_and_polarity():
    # 3×3 map on a 48×48 image (cell 16 px): highest cell (row 2, col 1) → centre (24, 40);
    # lowest cell (row 0, col 1) → centre (24, 8).
    m = np.full((3, 3), 0.5)
    m[2, 1], m[0, 1] = 0.9, 0.1
    assert sp.map_cell_peak(m, (48, 48)) == (24.0, 40.0)
    assert sp.map_cell_peak(m, (48, 48), "inverted") == (24.0, 8.0)
    maps, scores = np.stack([m, m]), np.array([0.5, 0.5])
    # contact (30, 45): |(6, 5)| = 7.8 ≤ 16 → hit for "peak"; contact (24, 8): 32 px away → miss.
    # Inverted: (30, 45) is |(6, 37)| = 37.5 px from (24, 8) → miss; (24, 8) → hit.
    assert sp.pointing_hits(maps, scores, [0, 1], [[30, 45], [24, 8]], (48, 48)) == (1, 2)
    assert sp.pointing_hits(maps, scores, [0, 1], [[30, 45], [24, 8]], (48, 48), "inverted") == (1, 2)
    # an unscored frame (NaN) is not counted
    assert sp.pointing_hits(maps, np.array([np.nan, 0.5]), [0, 1], [[30, 45], [24, 8]], (48, 48)) == (0, 1)


def test_synthetic_event_boxes(tmp_path):
    # disc r = 2 at (10, 20); box of half sizes (3, 1) turned by π/2 at (30, 30): AABB half extents
    # (|cos|·3 + |sin|·1, |sin|·3 + |cos|·1) = (1, 3) → [29, 27, 31, 33]. The floor is no box.
    record = {
        "events": [
            {"frame": 1, "objects": ["disc0", "floor"]},
            {"frame": 1, "objects": ["disc0", "box1"]},
            {"frame": 0, "objects": ["wall_left", "floor"]},
        ],
        "metadata": {
            "objects": [
                {
                    "name": "disc0",
                    "kind": "disc",
                    "radius_px": 2.0,
                    "trajectory_px": [[0, 0], [10, 20]],
                    "angle_rad": [0, 0],
                },
                {
                    "name": "box1",
                    "kind": "box",
                    "half_size_px": [3, 1],
                    "trajectory_px": [[0, 0], [30, 30]],
                    "angle_rad": [0, math.pi / 2],
                },
            ]
        },
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(record))
    out = sp.synthetic_event_boxes(str(path))
    assert [f for f, _ in out] == [1, 1]
    assert out[0][1] == [[8, 18, 12, 22]]
    np.testing.assert_allclose(out[1][1], [[8, 18, 12, 22], [29, 27, 31, 33]], atol=1e-9)
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a synthetic_collisions record"):
        sp.synthetic_event_boxes(str(path))


def test_synthetic_event_boxes_v2_camera_and_resize(tmp_path):
    # v2 records world px + a camera: image = zoom·(world − centre − offset) + centre. Native 20×40 (H×W),
    # centre (20, 10); at frame 1 zoom 2, offset (1, 0): disc r = 2 at world (10, 10) → image centre
    # (2·(10 − 20 − 1) + 20, 10) = (−2, 10), half extent 4 → [−6, 6, 2, 14]; in a 10×20 frame: halved.
    record = {
        "frame_size": [20, 40],
        "events": [{"frame": 1, "objects": ["disc0", "floor"]}],
        "metadata": {
            "objects": [
                {
                    "name": "disc0",
                    "kind": "disc",
                    "radius_px": 2.0,
                    "trajectory_px": [[0, 0], [10, 10]],
                    "angle_rad": [0, 0],
                }
            ],
            "v2": {"camera": {"zoom": [1.0, 2.0], "offset_px": [[0, 0], [1, 0]]}},
        },
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(record))
    np.testing.assert_allclose(sp.synthetic_event_boxes(str(path))[0][1], [[-6, 6, 2, 14]])
    np.testing.assert_allclose(sp.synthetic_event_boxes(str(path), (10, 20))[0][1], [[-3, 3, 1, 7]])


def test_synthetic_event_boxes_hold_the_v2_generators_contacts(tmp_path):
    # The generator's own contact points (camera applied by the generator) lie on the boxes of the objects in
    # contact, at the prepared frame size, for every event of a few v2 videos (margin: the object's motion
    # between the event frame and the exact contact instant, plus a pixel).
    from input_pipeline.datasets.synthetic_work import render_one
    from input_pipeline.synthetic import v2

    checked = 0
    for seed in range(3):
        stem = str(tmp_path / f"v{seed}")
        render_one((seed, v2.PRESETS["tiny"], stem))
        record = json.loads(open(stem + ".json").read())
        native_h, native_w = record["frame_size"]
        size = (32, 32)
        names = {o["name"] for o in record["metadata"]["objects"]}
        with_boxes = [e for e in record["events"] if names & set(e["objects"])]  # walls and floor have none
        out = sp.synthetic_event_boxes(stem + ".json", size)
        assert [f for f, _ in out] == [e["frame"] for e in with_boxes]
        for e, (_, boxes) in zip(with_boxes, out):
            x, y = e["x"] * size[1] / native_w, e["y"] * size[0] / native_h
            margin = (e["impact_speed"] + 1.0) * max(size[1] / native_w, size[0] / native_h)
            near = [x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin for x0, y0, x1, y1 in boxes]
            assert any(near), (seed, e, boxes)
            checked += 1
    assert checked >= 3
