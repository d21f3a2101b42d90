"""benchmarks/localisation_shift.py's own logic on tiny inputs: the two kinds of labelled folder, the flipped
view's contact points, and that a map that has learned *where* contacts sit loses to the inflection magnitude
once they sit elsewhere (the thing the benchmark measures)."""

import json

import numpy as np
from benchmark_scripts import load_benchmark

from input_pipeline.video_writer import write_video
from ta2net_jax.detection.detect import VideoDetector
from ta2net_jax.detection.detectors import Scores

bench = load_benchmark("localisation_shift")


def test_labelled_videos_reads_v2_renders_and_perspective_labels(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    for i in (1, 0):
        (v2 / f"validation_{i:05d}.json").write_text(
            json.dumps({"fps": 25.0, "frame_size": [120, 160], "events": [{"frame": 4 + i, "x": 10.0, "y": 90.5}]})
        )
    videos = bench.labelled_videos(str(v2))
    assert [v[0] for v in videos] == [str(v2 / "validation_00000.mp4"), str(v2 / "validation_00001.mp4")]
    assert videos[1][1:] == ([(5, 10.0, 90.5)], (120, 160))

    persp = tmp_path / "persp"
    persp.mkdir()
    entry = {"frames": [7], "events": [{"frame": 7, "x": 3.0, "y": 4.0, "time_s": 0.3}], "size": [240, 320]}
    (persp / "labels.json").write_text(json.dumps({"perspective_0000.mp4": entry}))
    assert bench.labelled_videos(str(persp)) == [(str(persp / "perspective_0000.mp4"), [(7, 3.0, 4.0)], (240, 320))]


class _UniformMaps:
    """A detector stand-in: every frame's map uniform, the flows passed through (`contact_inputs` plumbing)."""

    uses_backward_flow = True

    def stride(self, num_frames, fps):
        return 1

    def scores(self, frames, flow_fwd, flow_bwd, fps):
        return Scores(np.zeros(len(frames)), np.ones((len(frames), 4, 4)), flow_fwd, flow_bwd)


def test_upside_down_mirrors_the_contact_and_the_motion(tmp_path):
    """A bright square moving down then stopping at frame 6: the contact (native 32×48 pixels) comes back in
    16-px model pixels, mirrored in y when upside down, and the inflection magnitude flips with the frames."""
    frames = np.zeros((12, 32, 48, 3), np.uint8)
    for t in range(12):
        y = 2 + 3 * min(t, 6)
        frames[t, y : y + 6, 20:28] = 255
    path = str(tmp_path / "drop.mp4")
    write_video(path, frames, 25.0)
    detector = VideoDetector(method="inflection")
    detector.detector = _UniformMaps()  # VideoDetector.score_frames's flow, then the stand-in's scores
    events = [(6, 24.0, 26.0)]
    (up,) = bench.contact_inputs(detector, 16, path, events, (32, 48), upside_down=False)
    (down,) = bench.contact_inputs(detector, 16, path, events, (32, 48), upside_down=True)
    assert up[2] == (8.0, 13.0) and down[2] == (8.0, 3.0)
    assert up[1].shape == down[1].shape == (16, 16)
    rows_up, rows_down = up[1].sum(axis=1), down[1].sum(axis=1)
    assert np.argmax(rows_up) >= 8 > np.argmax(rows_down)  # the motion broke low, and high once flipped
    assert bench.contact_inputs(detector, 16, path, [(1, 0.0, 0.0), (10, 0.0, 0.0)], (32, 48), False) == []


def test_a_positional_map_points_only_where_contacts_used_to_be():
    """The map peaks in the bottom rows whatever the video (a learned prior); the motion breaks where the
    contact is. Upright both agree; upside down only the inflection magnitude (map_power 0) finds it."""
    prior = np.linspace(0.0, 1.0, 8)[:, None] * np.ones((8, 8))  # [h, w]: larger towards the bottom

    def contact(y):
        magnitude = np.zeros((64, 64))
        magnitude[y - 2 : y + 2, 30:34] = 1.0  # the contact
        magnitude[60:64, 0:4] = 0.2  # weaker motion in a bottom corner
        return prior, magnitude, (32.0, float(y))

    upright, flipped = [contact(56)], [contact(8)]
    by_inflection = {"map_power": 0, "floor": 0.5, "power": 1}
    by_map = {"map_power": 3, "floor": 0.1, "power": 1}
    assert bench.pointing(upright, by_inflection)[0] == 1.0 and bench.pointing(upright, by_map)[0] == 1.0
    assert bench.pointing(flipped, by_inflection) == (1.0, 0.0)
    accuracy, median_px = bench.pointing(flipped, by_map)
    assert accuracy == 0.0 and median_px > 16
