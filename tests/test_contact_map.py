"""The contact map: supervision of the source map with the exact contact points (against a float64
reference), contact points through crops and flips, and the localisation measures of `ta2net eval`
(attended peak and centroid, the localisation table)."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import AlwaysFlip

from input_pipeline import clips
from ta2net_jax import losses
from ta2net_jax.evaluation import localisation
from ta2net_jax.evaluation.metrics import spatial


def contact_loss_f64(source_map, contact_xy):
    m = np.clip(np.asarray(source_map, np.float64), 1e-6, 1 - 1e-6)
    b, t, h, w = m.shape
    total, count = 0.0, 0
    for i in range(b):
        for j in range(t):
            x, y = contact_xy[i, j]
            if x < 0:
                continue
            row, col = min(int(np.floor(y * h)), h - 1), min(int(np.floor(x * w)), w - 1)
            target = np.zeros((h, w), bool)
            target[row, col] = True
            positive = -np.log(m[i, j][target]).sum()
            negative = -np.log(1 - m[i, j][~target]).sum() / (h * w - 1)
            total, count = total + 0.5 * (positive + negative), count + 1
    return total / max(count, 1)


def test_contact_loss_matches_float64_reference_and_fixes_polarity():
    rng = np.random.default_rng(0)
    source_map = rng.uniform(0.01, 0.99, (2, 5, 4, 4)).astype(np.float32)
    contact_xy = np.full((2, 5, 2), -1.0, np.float32)
    contact_xy[0, 1] = (0.1, 0.9)
    contact_xy[1, 3] = (0.99, 0.0)
    contact_xy[1, 4] = (0.5, 0.5)
    got = float(losses.contact_loss(jnp.asarray(source_map), jnp.asarray(contact_xy)))
    assert got == pytest.approx(contact_loss_f64(source_map, contact_xy), rel=1e-5)
    # A map that is high at the contact cell scores far better than its inversion: m, not 1 − m, is the source.
    onehot = np.full((1, 1, 4, 4), 0.05, np.float32)
    onehot[0, 0, 3, 0] = 0.95
    xy = np.array([[[0.1, 0.9]]], np.float32)
    right = float(losses.contact_loss(jnp.asarray(onehot), jnp.asarray(xy)))
    inverted = float(losses.contact_loss(jnp.asarray(1 - onehot), jnp.asarray(xy)))
    assert right < 0.1 < 2.0 < inverted
    # Frames without a contact contribute nothing; none at all gives 0.
    assert float(losses.contact_loss(jnp.asarray(source_map), jnp.full((2, 5, 2), -1.0))) == 0.0


def test_contact_points_follow_clips_and_flips():
    n, size = 12, (32, 64)
    example = {
        "frames": np.zeros((n,) + size + (3,), np.uint8),
        "flow_fwd": np.zeros((n - 1,) + size + (2,), np.float16),
        "flow_bwd": np.zeros((n - 1,) + size + (2,), np.float16),
        "event_frames": np.array([4, 7, 7]),
        "event_xy": np.array([[16.0, 8.0], [48.0, 24.0], [1.0, 1.0]], np.float32),
    }
    contacts = clips.frame_contacts(n, example["event_frames"], example["event_xy"], size)
    np.testing.assert_allclose(contacts[4], [0.25, 0.25])
    np.testing.assert_allclose(contacts[7], [0.75, 0.75])  # of two events in one frame, the first
    assert (contacts[[0, 5, 11]] == -1).all()
    clip = clips.make_clip(example, 3, 6)
    np.testing.assert_allclose(clip["contact_xy"][1], [0.25, 0.25])  # frame 4
    flipped = clips.augment(clip, AlwaysFlip(), hflip=True, brightness=0, contrast=0)
    np.testing.assert_allclose(flipped["contact_xy"][1], [0.75, 0.25])
    assert (flipped["contact_xy"][0] == -1).all()


def test_upsample_and_attended_peak():
    np.testing.assert_allclose(spatial.upsample_map(np.full((3, 3), 0.4), (12, 12)), 0.4)
    big = spatial.upsample_map(np.array([[0.0, 1.0]]), (1, 8))
    assert big[0, 0] == 0.0 and big[0, -1] == 1.0 and np.all(np.diff(big[0]) >= 0)
    magnitude = np.zeros((16, 16), np.float32)
    magnitude[2, 2] = 10.0  # a strong motion break where the map says nothing sounds …
    magnitude[13, 12] = 3.0  # … and a weaker one inside the attended region
    source_map = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert spatial.attended_peak_xy(source_map, magnitude) == (12.5, 13.5)
    # No motion break: the upsampled map's own peak (its plateau starts at the cell centre, pixel 12).
    assert spatial.attended_peak_xy(source_map, np.zeros((16, 16))) == (12.5, 12.5)


def test_attended_centroid_sits_between_the_attended_breaks():
    magnitude = np.zeros((16, 16), np.float32)
    magnitude[2, 2] = 10.0  # outside the attended region: ignored
    magnitude[12, 12] = 2.0  # two breaks of equal strength where the upsampled map is 1 …
    magnitude[12, 14] = 2.0
    magnitude[9, 9] = 0.1  # … and one below the floor, which does not pull the centroid
    source_map = np.array([[0.0, 0.0], [0.0, 1.0]])
    x, y = spatial.attended_centroid_xy(source_map, magnitude, floor=0.3, power=1, map_power=1)
    assert (x, y) == pytest.approx((13.5, 12.5))
    # Weighted by score**power: a break twice as strong pulls the centroid towards itself.
    magnitude[12, 14] = 4.0
    x, _ = spatial.attended_centroid_xy(source_map, magnitude, floor=0.3, power=2, map_power=1)
    assert x == pytest.approx((12.5 * 0.25 + 14.5 * 1.0) / 1.25)
    # floor = 1 keeps the attended peak only.
    assert spatial.attended_centroid_xy(source_map, magnitude, floor=1.0, map_power=1) == spatial.attended_peak_xy(
        source_map, magnitude
    )
    # No motion break: the upsampled map's own peak, as attended_peak_xy.
    assert spatial.attended_centroid_xy(source_map, np.zeros((16, 16))) == (12.5, 12.5)


def test_localisation_table_ranks_a_map_that_points():
    rng = np.random.default_rng(2)
    videos = []
    for k in range(6):
        n, xy = 10, (rng.uniform(4, 60), rng.uniform(4, 60))
        maps = np.full((n, 4, 4), 0.1)
        row, col = int(xy[1] // 16), int(xy[0] // 16)
        maps[:, row, col] = 0.9
        magnitude = np.zeros((64, 64), np.float32)
        magnitude[int(xy[1]), int(xy[0])] = 1.0
        videos.append(
            {
                "id": f"v{k}",
                "scores": np.r_[np.nan, np.nan, np.zeros(n - 4), np.nan, np.nan],
                "maps": maps,
                "event_frames": np.array([5]),
                "event_xy": np.array([xy], np.float32),
                "frame_size": (64, 64),
                "inflection_event_maps": magnitude[None],
                "inflection_event_maps_pm1": np.stack([magnitude, magnitude])[None],
            }
        )
    table = localisation.localisation(videos, "peak", (3, 1))
    loc = table["locators"]
    assert table["num_events"] == 6 and table["pointing_radius_px"] == 16
    assert loc["map_cell"]["pointing_accuracy"] == 1.0 and loc["attended_peak"]["median_distance_px"] < 1.0
    assert loc["attended_peak"]["pointing_accuracy_pm1"] == 1.0
    assert loc["attended_centroid"]["median_distance_px"] < 1.0
    assert loc["uniform_random"]["pointing_accuracy"] < 0.5
    inverted = localisation.localisation(videos, "inverted", (3, 1))["locators"]
    assert inverted["map_cell"]["pointing_accuracy"] < 1.0


def test_tune_centroid_sharpens_the_map_when_a_stronger_break_lies_outside_the_contact():
    """At every event the contact (pixel 7, 7; map cell 0.9) breaks less than an object far away (pixel 56, 56;
    map cell 0.6): map × magnitude peaks on the far object and averages across both; map² × magnitude above
    85 % of its peak keeps the contact alone. The first such setting of the grid is chosen."""
    videos = []
    for _ in range(3):
        n = 10
        maps = np.full((n, 4, 4), 0.1)
        maps[:, 0, 0], maps[:, 3, 3] = 0.9, 0.6
        magnitude = np.zeros((64, 64), np.float32)
        magnitude[7, 7], magnitude[56, 56] = 1.0, 1.6
        videos.append(
            {
                "scores": np.r_[np.nan, np.nan, np.zeros(n - 4), np.nan, np.nan],
                "maps": maps,
                "event_frames": np.array([5]),
                "event_xy": np.array([(7.5, 7.5)], np.float32),
                "frame_size": (64, 64),
                "inflection_event_maps": magnitude[None],
                "inflection_event_maps_pm1": np.stack([magnitude, magnitude])[None],
            }
        )
    chosen = localisation.tune_centroid(videos, "peak")
    assert chosen == {"map_power": 2, "floor": 0.85, "power": 1}
    loc = localisation.localisation(videos, "peak", None, chosen)["locators"]
    assert loc["attended_centroid"]["pointing_accuracy"] == 1.0
    default = localisation.localisation(videos, "peak", None, {"map_power": 1, "floor": 0.3, "power": 2})
    assert default["locators"]["attended_centroid"]["pointing_accuracy"] == 0.0
    assert localisation.tune_centroid([], "peak") is None
