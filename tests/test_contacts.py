"""Which contacts a detector finds (evaluation/contacts.py): kinds, speeds at the model input, hit rates."""

import json

import pytest

from ta2net_jax.evaluation import contacts


def test_contact_kind():
    assert contacts.contact_kind(["disc0", "floor"]) == "object–floor"
    assert contacts.contact_kind(["box1", "wall_left"]) == "object–wall"
    assert contacts.contact_kind(["disc0", "ceiling"]) == "object–wall"
    assert contacts.contact_kind(["disc0", "box1"]) == "object–object"
    assert contacts.contact_kind(["rod2", "floor"], rods=["rod2"]) == "rod"
    assert contacts.contact_kind(["disc0", "rod2"], rods=["rod2"]) == "rod"
    # The name alone does not make a rod: only the generator's list does.
    assert contacts.contact_kind(["rod2", "floor"]) == "object–floor"


def test_contact_records_speed_through_camera_and_resize(tmp_path):
    # Native 20×80 (H×W) resized to 10×10: scales 0.5 and 0.125, geometric mean 0.25; zoom 2 at frame 1.
    record = {
        "frame_size": [20, 80],
        "events": [
            {"frame": 0, "objects": ["disc0", "floor"], "impact_speed": 4.0},
            {"frame": 1, "objects": ["rod1", "floor"], "impact_speed": 4.0},
        ],
        "metadata": {"v2": {"rods": ["rod1"], "camera": {"zoom": [1.0, 2.0], "offset_px": [[0, 0], [0, 0]]}}},
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(record))
    out = contacts.contact_records(str(path), (10, 10))
    assert [r["kind"] for r in out] == ["object–floor", "rod"]
    assert [r["speed_px"] for r in out] == pytest.approx([4.0 * 0.25, 4.0 * 2.0 * 0.25])


def test_contact_records_v1_has_no_camera(tmp_path):
    # Generator v1: no v2 block, rendered at the frame size the dataset keeps.
    record = {"events": [{"frame": 3, "objects": ["disc0", "disc1"], "impact_speed": 1.5}], "metadata": {}}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(record))
    assert contacts.contact_records(str(path), (48, 48)) == [{"frame": 3, "kind": "object–object", "speed_px": 1.5}]
    path.write_text(json.dumps({"events": []}))
    with pytest.raises(ValueError, match="v.json"):
        contacts.contact_records(str(path), (48, 48))


def test_found_by_contact_hit_rates():
    floor = lambda f, s: {"frame": f, "kind": "object–floor", "speed_px": s}  # noqa: E731
    rod = lambda f, s: {"frame": f, "kind": "rod", "speed_px": s}  # noqa: E731
    videos = [
        # Two floor contacts 1 frame apart are both found by one detection between them (a hit rate, not F1).
        ([floor(10, 3.0), floor(11, 0.5), rod(30, 0.5)], [12]),
        # Exactly at the tolerance counts; one frame beyond does not.
        ([rod(5, 5.0), floor(40, 1.5)], [8, 44]),
        ([floor(7, 2.0)], []),
    ]
    out = contacts.found_by_contact(videos, tol=3)
    assert out["all"] == {"events": 6, "found": 3, "rate": 0.5}
    assert out["by_kind"]["object–floor"] == {"events": 4, "found": 2, "rate": 0.5}
    assert out["by_kind"]["rod"] == {"events": 2, "found": 1, "rate": 0.5}
    assert out["by_kind"]["object–wall"] == {"events": 0, "found": 0, "rate": None}
    assert out["by_speed_px"]["0–1"] == {"events": 2, "found": 1, "rate": 0.5}
    assert out["by_speed_px"]["1–2"] == {"events": 1, "found": 0, "rate": 0.0}
    assert out["by_speed_px"]["2–4"] == {"events": 2, "found": 1, "rate": 0.5}
    assert out["by_speed_px"]["≥ 4"] == {"events": 1, "found": 1, "rate": 1.0}
    rows = contacts.table_rows({"model": out})
    assert rows[0] == {"group": "all contacts", "model": "3 / 6 (0.50)"}
    assert {"group": "kind: object–wall", "model": "–"} in rows
