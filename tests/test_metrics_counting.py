"""Counting metrics (metrics_counting.py) on hand-worked cases; definitions: ../shared/docs/evaluation.md §5."""

import math

import pytest

from ta2net_jax.evaluation import protocols
from ta2net_jax.evaluation.metrics.counting import count_from_events, counting_metrics, per_video_counts


def test_count_modes():
    assert count_from_events(13, "events") == 13
    assert count_from_events(13, "intervals") == 12  # 13 contacts bound 12 cycles (SoccerJuggling)
    assert count_from_events(0, "intervals") == 0  # no negative counts
    with pytest.raises(ValueError, match="count mode"):
        count_from_events(3, "cycles")


def test_mae_obo_obz_rmse_hand_worked():
    # pred 3, 5, 0 against GT 3, 3, 2: |errors| = 0, 2, 2.
    # MAE = (0/3.1 + 2/3.1 + 2/2.1) / 3 = (0 + 0.645161 + 0.952381) / 3 = 0.532514
    # OBO = [0 <= 1, 2 <= 1, 2 <= 1] = 1/3; OBZ = 1/3; RMSE = sqrt((0 + 4 + 4) / 3) = sqrt(8/3) = 1.632993
    m = counting_metrics([3, 5, 0], [3, 3, 2])
    assert m["num_videos"] == 3
    assert m["mae"] == pytest.approx(0.532514, abs=1e-6)
    assert m["obo"] == pytest.approx(1 / 3)
    assert m["obz"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(8 / 3))


def test_off_by_one_is_inside_obo_and_zero_count_uses_the_plus_point_one():
    # pred 1 vs GT 0: error 1 → normalised 1 / (0 + 0.1) = 10 (the +0.1 keeps GT 0 finite); OBO hit, OBZ miss.
    m = counting_metrics([1], [0])
    assert m["mae"] == pytest.approx(10.0) and m["obo"] == 1.0 and m["obz"] == 0.0


def test_soccer_juggling_events_vs_cycles():
    # 13 detected contacts against the UCFRep count of 12 cycles: events mode is off by one
    # (1 / 12.1 = 0.082645, OBO hit), intervals mode exact.
    rows = per_video_counts([13], [12], "events")
    assert rows[0]["pred_count"] == 13 and rows[0]["norm_error"] == pytest.approx(1 / 12.1) and rows[0]["obo"]
    assert per_video_counts([13], [12], "intervals")[0]["abs_error"] == 0


def test_counting_protocol_uses_annotated_count_else_clustered_events():
    # Audible623 labels 12, 31, 32, 33, 53: runs cluster to 3 events → GT count 3 ("events");
    # an annotated RepCount count wins over the frames ("cycles").
    assert protocols.gt_count([12, 31, 32, 33, 53]) == (3.0, "events")
    assert protocols.gt_count(None, 3) == (3.0, "cycles")
    videos = [
        {"id": "a", "events": [5, 20, 40], "gt_count": 3.0, "gt_count_kind": "cycles"},
        {"id": "b", "events": [], "gt_count": 2.0},
    ]
    pooled, rows = protocols.counting(videos)
    # events: errors 0 and 2 → MAE = (0 + 2/2.1)/2 = 0.476190, OBO 1/2; intervals: 2 vs 3 and 0 vs 2 →
    # MAE = (1/3.1 + 2/2.1)/2 = (0.322581 + 0.952381)/2 = 0.637481, OBO 1/2.
    assert pooled["events"]["mae"] == pytest.approx(0.476190, abs=1e-6) and pooled["events"]["obo"] == 0.5
    assert pooled["intervals"]["mae"] == pytest.approx(0.637481, abs=1e-6)
    assert rows[0]["pred_intervals"] == 2 and rows[1]["pred_events"] == 0


def test_errors():
    with pytest.raises(ValueError, match="2 predicted counts for 1"):
        counting_metrics([1, 2], [1])
    with pytest.raises(ValueError, match=">= 0"):
        counting_metrics([1], [-1])
    assert counting_metrics([], [])["mae"] is None
