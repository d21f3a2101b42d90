"""`--labels` parsing (labels.py): inline lists, JSON lists, files keyed by video (Audible623 labels.json,
RepCount labels, Greatest Hits audio onsets), the Audible623 CSV, and clear errors naming the file."""

import json

import pytest
from conftest import realdata

from input_pipeline.labels import parse_labels
from ta2net_jax.cli import main as cli

BOXING = [40, 58, 104, 121, 135, 150, 181, 191, 206, 216, 233, 268]


def test_inline_and_json_list(tmp_path):
    assert parse_labels("12,31,53").frames.tolist() == [12, 31, 53]
    assert parse_labels(" 12, 31 ,53, ").frames.tolist() == [12, 31, 53]
    assert parse_labels("") is None and parse_labels(None) is None
    path = tmp_path / "l.json"
    path.write_text("[3, 7.0, 11]")
    assert parse_labels(str(path)).frames.tolist() == [3, 7, 11]


def test_keyed_files_hermetic(tmp_path):
    data = {
        "clip_a": {"audible623": {"frames": [5, 6, 7, 20]}, "ucfrep": {"count": 2.0, "cycles": [[5, 20]]}},
        "clip_b.mp4": {"count": 3, "cycles": [[0, 10], [10, 20], [20, 30]]},
        "clip_c.mp4": {"audio_onsets": {"delta_0.3_condfoleygen": {"frames_at_native_fps": [1.74, 13.5, 25.43]}}},
        "clip_d": [1, 2],
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(data))
    a = parse_labels(str(path), "/videos/clip_a.avi")  # by stem
    assert a.frames.tolist() == [5, 6, 7, 20] and a.count == 2.0 and "clip_a" in a.source
    b = parse_labels(str(path), "clip_b.mp4")  # by file name; a count without frames
    assert b.frames is None and b.count == 3.0 and len(b.cycles) == 3
    c = parse_labels(str(path), "x/clip_c.mp4")  # fractional onsets rounded: 1.74 → 2, 13.5 → 14
    assert c.frames.tolist() == [2, 14, 25] and c.count is None
    assert parse_labels(str(path), "clip_d.webm").frames.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"labels.json: no labels for clip_z.mp4"):
        parse_labels(str(path), "clip_z.mp4")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json: labels file not found"):
        parse_labels(str(tmp_path / "missing.json"), "v.mp4")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        parse_labels(str(bad), "v.mp4")
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"v": {"note": "nothing"}}))
    with pytest.raises(ValueError, match=r"e.json \[v\]: no frames"):
        parse_labels(str(empty), "v.mp4")
    neg = tmp_path / "n.json"
    neg.write_text("[3, -1]")
    with pytest.raises(ValueError, match="n.json: frame number -1 is out of range"):
        parse_labels(str(neg))


def test_real_label_files():
    labels = realdata("ucf101_audible623", "labels.json")
    boxing = parse_labels(labels, realdata("ucf101_audible623", "v_BoxingPunchingBag_g05_c01.avi"))
    assert boxing.frames.tolist() == BOXING and boxing.count is None
    soccer = parse_labels(labels, "v_SoccerJuggling_g23_c01.avi")
    assert soccer.frames.size == 19 and soccer.count == 12.0  # Audible623 frames + UCFRep count
    rep = parse_labels(realdata("repcount_ucfrep", "repcount_samples_labels.json"), "test2315.mp4")
    assert rep.frames is None and rep.count == 3 and rep.cycles[1] == [86.0, 169.0]
    hits = parse_labels(realdata("greatest_hits_condfoleygen", "audio_onsets.json"), "hitting_bag.mp4")
    assert hits.frames.tolist() == [2, 14, 25, 37, 48, 60, 72, 83]  # delta 0.3 onsets, rounded
    csv = parse_labels(realdata("audible623", "data_train.csv"), "v_BoxingPunchingBag_g05_c01.avi")
    assert csv.frames.tolist() == BOXING


def test_cli_labels_error_is_one_line(tmp_path, capsys):
    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    missing = str(tmp_path / "nothere.json")
    assert cli.main(["detect", video, "--labels", missing, "--out", str(tmp_path / "e.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and missing in err[0] and "not found" in err[0]
