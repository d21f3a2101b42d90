"""Real-video datasets: the Audible623 / RepCount / UCFRep CSV quirks one by one, builds from the real
clips of ../shared/realdata (acceptance), builds from generated stand-in videos for every builder, the
lazy-JPEG training pipeline, and `ta2net prepare` (resumable, failures named)."""

import json
import os

import numpy as np
import pytest

from input_pipeline import frame_times, prepare as prep, video as video_lib
from input_pipeline.datasets import audible623, audible623_csv as acsv, repcount, repcount_csv
from tests.conftest import REPO, realdata

HEAD = "video_id,sound_label,class\r\n"


def kinds(anomalies):
    return [a.kind for a in anomalies]


# --- Audible623 CSV quirks ------------------------------------------------------------------------
def test_five_field_rows_keep_three_and_the_segment():
    rows, an = acsv.parse_label_csv(HEAD + 'ApQlzehYyfo,"14,30,206",BoxingPunchin,23,33\r\n')
    assert rows[0].frames == (14, 30, 206) and rows[0].segment == (23, 33) and rows[0].class_raw == "BoxingPunchin"
    assert "extra_fields" in kinds(an)


def test_duplicate_ids_are_kept_as_separate_examples():
    rows, an = acsv.parse_label_csv(HEAD + 'GA1p9iU0HlY,"1,5",tapping\r\nGA1p9iU0HlY,"2,9",tapping\r\n')
    assert [r.key for r in rows] == ["GA1p9iU0HlY", "GA1p9iU0HlY#2"] and rows[1].frames == (2, 9)
    assert kinds(an) == ["duplicate_id"] and "different labels" in an[0].detail


def test_unsorted_indices_are_sorted_not_guessed():
    rows, an = acsv.parse_label_csv(HEAD + 'v_Drumming_g06_c01,"107,19,120",Drumming\n')
    assert rows[0].frames == (19, 107, 120) and "107 before 19" in an[0].detail and an[0].kind == "unsorted"


def test_duplicate_index_is_removed():
    rows, an = acsv.parse_label_csv(HEAD + 'fVU85a0AhQI,"51,61,61,91",hammer\n')
    assert rows[0].frames == (51, 61, 91) and kinds(an) == ["duplicate_index"]


def test_index_beyond_the_cap_is_flagged_but_kept():
    rows, an = acsv.parse_label_csv(HEAD + 'v_SoccerJuggling_g11_c03,"12,307",SoccerJuggling\n')
    assert rows[0].frames == (12, 307) and "beyond_cap" in kinds(an)


def test_class_names_are_canonicalised_and_reported():
    rows, an = acsv.parse_label_csv(
        HEAD + 'a1,"1",Drumming\na2,"2",drumming\na3,"3",slicing\na4,"4",cutting&slicing\na5,"5",kazoo\n'
    )
    assert [r.class_name for r in rows] == ["drumming", "drumming", "cutting_slicing", "cutting_slicing", "kazoo"]
    assert [r.class_raw for r in rows][:2] == ["Drumming", "drumming"]
    assert kinds(an).count("class_alias") == 2 and "unknown_class" in kinds(an)


@pytest.mark.parametrize(
    "label,frames,kind",
    [
        ('"-1"', (), "sentinel"),
        ('""', (), "no_labels"),
        ('"3.0,7"', (3, 7), "float_label"),
        ('"-5,4"', (4,), "negative_index"),
    ],
)
def test_special_label_values(label, frames, kind):
    rows, an = acsv.parse_label_csv(HEAD + f"vid,{label},hammer\n")
    assert rows[0].frames == frames and kind in kinds(an)


def test_bad_rows_are_skipped_and_named():
    rows, an = acsv.parse_label_csv(
        HEAD + 'ok,"1",hammer\nbad,"1,x",hammer\nshort,"2"\n,"3",hammer\n\nok2,"4",hammer\n'
    )
    assert [r.key for r in rows] == ["ok", "ok2"]
    assert kinds(an) == ["bad_label", "missing_fields", "empty_id", "blank_line"]
    assert [a.line for a in an] == [3, 4, 5, 6]


def test_whitespace_bom_and_line_endings():
    for text in ["\ufeff" + HEAD + ' vid ,"1, 2", hammer \r\n', HEAD.replace("\r\n", "\r") + 'vid,"1, 2",hammer\r']:
        rows, an = acsv.parse_label_csv(text)
        assert (rows[0].video_id, rows[0].frames, rows[0].class_name) == ("vid", (1, 2), "hammer")


def test_wrong_header_names_the_file():
    with pytest.raises(ValueError, match="labels.csv: header"):
        acsv.parse_label_csv("id,labels\na,1\n", "labels.csv")


def test_split_overlap_keeps_the_eval_copy():
    train, _ = acsv.parse_label_csv(HEAD + 'a,"1",hammer\nb,"2",hammer\n')
    test, _ = acsv.parse_label_csv(HEAD + 'b,"3",hammer\n')
    splits, an = acsv.resolve_split_overlap({"train": train, "test": test}, "test")
    assert [r.key for r in splits["train"]] == ["a"] and kinds(an) == ["split_overlap"]


def test_real_csvs_have_the_documented_quirks():
    rows, an = acsv.read_label_csv(realdata("audible623", "data_train.csv"))
    assert len(rows) == 497 and kinds(an).count("extra_fields") == 13 and kinds(an).count("duplicate_id") == 3
    assert kinds(an).count("unsorted") == 2 and kinds(an).count("duplicate_index") == 1
    assert kinds(an).count("beyond_cap") == 1


# --- RepCount / UCFRep CSV quirks ----------------------------------------------------------------
RC_HEAD = ",type,name,count,L1,L2,L3,L4,L5,fps,num_frames\n"


def test_repcount_rows_and_quirks():
    text = RC_HEAD + (
        "0,squant,a.mp4,2,0.0,60.0,86.0,169.0,,30.0,300\n"
        "1,squat,b.mp4,3,5,9,20,30,40,25,100\n"  # odd boundary count; count mismatch
        "2,situp,c.mp4,1,50,40,,,,14,140\n"  # reversed cycle
        "3,situp,d.mp4,x,,,,,,14,140\n"
    )  # bad count
    rows, an = repcount_csv.parse_count_csv(text, "t.csv")
    assert [r.key for r in rows] == ["a", "b", "c"]
    assert rows[0].action == "squat" and rows[0].action_raw == "squant" and rows[0].count == 2
    assert rows[0].cycles == ((0, 60), (86, 169)) and rows[0].boundaries == (0, 60, 86, 169)
    assert rows[1].cycles == ((5, 9), (20, 30)) and rows[2].cycles == ()
    assert {"odd_boundaries", "count_mismatch", "reversed_cycle", "bad_count", "action_alias"} <= set(kinds(an))


def test_ucfrep_format_and_real_files():
    rows, an = repcount_csv.read_count_csv(realdata("repcount_ucfrep", "ucfrep_val.csv"))
    juggling = next(r for r in rows if r.key == "v_SoccerJuggling_g23_c01")
    labels = json.load(open(realdata("ucf101_audible623", "labels.json")))["v_SoccerJuggling_g23_c01"]["ucfrep"]
    assert juggling.count == labels["count"] and [list(c) for c in juggling.cycles] == labels["cycles"]
    assert juggling.segment == (13, 238) and juggling.action == "soccerjuggling"
    rows, an = repcount_csv.read_count_csv(realdata("repcount_ucfrep", "repcount_test_with_fps.csv"))
    assert len(rows) == 152 and "action_alias" in kinds(an) and "zero_count" in kinds(an)


# --- builds from the real clips (acceptance) -----------------------------------------------------
def _examples(builder):
    from input_pipeline.jpeg_frames import DecodedSource

    out = {}
    for split in builder.info.splits:
        src = DecodedSource(builder.as_data_source(split))
        for i in range(len(src)):
            e = src[i]
            out[e["id"].decode()] = dict(e, split=split)
    return out


def test_audible623_from_the_two_real_ucf101_clips(tmp_path):
    manual = tmp_path / "manual" / "UCF101"
    manual.mkdir(parents=True)
    for name in ("v_BoxingPunchingBag_g05_c01.avi", "v_SoccerJuggling_g23_c01.avi"):
        os.symlink(os.path.abspath(realdata("ucf101_audible623", name)), manual / name)
    csv_dir = os.path.dirname(realdata("audible623", "data_train.csv"))
    builder = audible623.build_dataset(
        "audible623", str(tmp_path / "tfds"), "tiny", manual_dir=str(tmp_path / "manual"), annotations_dir=csv_dir
    )
    examples = _examples(builder)
    assert sorted(examples) == ["v_BoxingPunchingBag_g05_c01", "v_SoccerJuggling_g23_c01"]
    csv_rows = {r.key: r for r in acsv.read_label_csv(os.path.join(csv_dir, "data_train.csv"))[0]}
    labels = json.load(open(realdata("ucf101_audible623", "labels.json")))
    for vid, e in examples.items():
        assert e["event_frames"].tolist() == list(csv_rows[vid].frames) == labels[vid]["audible623"]["frames"]
        assert e["num_frames"] == labels[vid]["n_frames_decoded"] and abs(e["fps"] - labels[vid]["fps"]) < 1e-3
        assert e["frames"].shape == (labels[vid]["n_frames_decoded"], 32, 32, 3)
        assert e["flow_fwd"].shape == (e["num_frames"] - 1, 32, 32, 2) and e["flow_fwd"].dtype == np.float16
        assert e["frames"][5].shape == (32, 32, 3) and e["frames"][[1, 3]].shape == (2, 32, 32, 3)
    report = json.load(open(os.path.join(builder.data_dir, "build_report.json")))
    missing = [i for ids in report["missing"].values() for i in ids]
    assert len(missing) == 621 and "v_SoccerJuggling_g23_c01" not in missing and "ApQlzehYyfo" in missing
    text = open(os.path.join(builder.data_dir, "build_report.txt")).read()
    assert "621 missing video(s)" in text and "GA1p9iU0HlY#2" in text and "[beyond_cap]" in text
    assert any(a["kind"] == "edge_event" and a["video_id"] == "v_SoccerJuggling_g23_c01" for a in report["anomalies"])


def test_repcount_from_the_real_csv_and_sample_videos(tmp_path):
    manual = tmp_path / "videos"
    manual.mkdir()
    for name in ("test2021.mp4", "test2315.mp4"):
        os.symlink(os.path.abspath(realdata("repcount_ucfrep", name)), manual / name)
    builder = repcount.build_dataset(
        "repcount",
        str(tmp_path / "tfds"),
        "tiny",
        manual_dir=str(manual),
        annotations_dir=os.path.dirname(realdata("repcount_ucfrep", "ucfrep_val.csv")),
    )
    examples = _examples(builder)
    labels = json.load(open(realdata("repcount_ucfrep", "repcount_samples_labels.json")))
    assert sorted(examples) == ["test2021", "test2315"]
    for vid, e in examples.items():
        truth = labels[vid + ".mp4"]
        assert e["count"] == truth["count"] and e["cycles"].tolist() == [[int(a), int(b)] for a, b in truth["cycles"]]
        assert e["event_frames"].tolist() == sorted({int(f) for c in truth["cycles"] for f in c})
    report = json.load(open(os.path.join(builder.data_dir, "build_report.json")))
    assert len(report["missing"]["test"]) == 150 and report["label_files_absent"].keys() == {"train", "validation"}


# --- builds from generated stand-in videos --------------------------------------------------------
def _standin(path, n=24, size=24, fps=25.0, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.clip(
        rng.normal(128, 40, (n, size, size, 3)).cumsum(0) / np.arange(1, n + 1)[:, None, None, None], 0, 255
    ).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    video_lib.write_video(path, frames, fps)


def test_audible_builders_from_standin_videos(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "data_train.csv").write_text(
        HEAD + 'v_TennisSwing_g01_c01,"3,10,30",TennisSwing\r\n'
        'yt_id_00001,"5,9",hammer,23,33\r\nyt_id_00001,"6",hammer\r\n'
        'v_Drumming_g02_c02,"4,12",Drumming\r\nbroken_0001,"4",clapping\r\n'
        'absent_0001,"4",clapping\r\n'
    )
    (ann / "data_eval.csv").write_text(HEAD + 'yt_id_00002,"7,11",drumming\r\n')
    m = tmp_path / "videos"
    _standin(str(m / "UCF-101" / "TennisSwing" / "v_TennisSwing_g01_c01.avi"))
    _standin(str(m / "hammer" / "yt_id_00001_000023_000033.mp4"), seed=1)  # Kinetics name: segment picks it
    _standin(str(m / "hammer" / "yt_id_00001_000100_000110.mp4"), seed=2)
    _standin(str(m / "v_Drumming_g02_c02.mkv"), seed=3)
    _standin(str(m / "drumming" / "yt_id_00002.mov"), seed=4)
    (m / "broken_0001.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 40)  # corrupt
    data_dir = str(tmp_path / "tfds")
    kw = dict(manual_dir=str(m), annotations_dir=str(ann), validation_fraction=0.0)
    ex = _examples(audible623.build_dataset("audible623", data_dir, "tiny", **kw))
    assert sorted(ex) == ["v_Drumming_g02_c02", "v_TennisSwing_g01_c01", "yt_id_00001", "yt_id_00001#2", "yt_id_00002"]
    assert ex["v_TennisSwing_g01_c01"]["event_frames"].tolist() == [3, 10]  # 30 ≥ 24 frames: dropped, reported
    assert ex["yt_id_00001"]["source_file"] == b"hammer/yt_id_00001_000023_000033.mp4"
    assert ex["yt_id_00002"]["split"] == "test" and ex["yt_id_00001"]["class"] == b"hammer"
    b = audible623.named_builder("audible623", data_dir, "tiny", **kw)
    report = json.load(open(os.path.join(b.data_dir, "build_report.json")))
    assert report["missing"]["train"] == ["absent_0001"]
    assert [e["id"] for e in report["corrupt"]["train"]] == ["broken_0001"] and "broken_0001.mp4" in report["corrupt"][
        "train"
    ][0]["error"]
    assert {"beyond_video_end", "ambiguous_file", "extra_fields", "duplicate_id"} <= {
        a["kind"] for a in report["anomalies"]
    }
    ucf = _examples(audible623.build_dataset("ucf101_audible", data_dir, "tiny", **kw))
    assert sorted(ucf) == ["v_Drumming_g02_c02", "v_TennisSwing_g01_c01"]
    kin = _examples(audible623.build_dataset("kinetics_audible", data_dir, "tiny", classes=("drumming",), **kw))
    assert sorted(kin) == ["yt_id_00002"]


def test_count_builders_from_standin_videos(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "test_with_fps.csv").write_text(
        RC_HEAD + "0,squant,s1.mp4,2,2,8,8,15,,25.0,24\n1,situp,s2.mp4,1,3,30,,,,25.0,24\n"
    )
    (ann / "new_val.csv").write_text(
        ",name,counts,num_frames,start_frame,end_frame,L1,L2,L3,L4\n"
        "0,UCF-101/JumpRope/v_JumpRope_g01_c01.avi,2.0,14.0,3.0,16.0,3.0,9.0,9.0,16.0\n"
    )
    m = tmp_path / "videos"
    _standin(str(m / "s1.mp4"))
    _standin(str(m / "sub" / "s2.avi"), fps=30.0)
    _standin(str(m / "UCF-101" / "JumpRope" / "v_JumpRope_g01_c01.avi"))
    rc = _examples(
        repcount.build_dataset("repcount", str(tmp_path / "tfds"), "tiny", manual_dir=str(m), annotations_dir=str(ann))
    )
    assert rc["s1"]["count"] == 2 and rc["s1"]["event_frames"].tolist() == [2, 8, 15] and rc["s1"]["action"] == b"squat"
    assert rc["s2"]["cycles"].tolist() == [[3, 23]]  # clipped to the 24-frame video, reported
    uc = _examples(
        repcount.build_dataset("ucfrep", str(tmp_path / "tfds"), "tiny", manual_dir=str(m), annotations_dir=str(ann))
    )
    assert uc["v_JumpRope_g01_c01"]["count"] == 2 and uc["v_JumpRope_g01_c01"]["segment"].tolist() == [3, 16]


def test_training_pipeline_reads_a_real_video_dataset_in_and_out_of_process(tmp_path):
    from input_pipeline import pipeline, registry
    from ta2net_jax.config_utils import load_config

    m = tmp_path / "videos"
    for i in range(3):
        _standin(str(m / f"vid_{i:07d}.mp4"), n=20, size=32, seed=i)
    (tmp_path / "data_train.csv").write_text(HEAD + "".join(f'vid_{i:07d},"6,11",hammer\n' for i in range(3)))
    (tmp_path / "data_eval.csv").write_text(HEAD + 'vid_0000002,"8",hammer\n')
    config = load_config(
        os.path.join(REPO, "configs", "audible623_data.py:smoke"),
        [
            f"data.data_dir={tmp_path / 'tfds'}",
            f"data.manual_dir={m}",
            f"data.annotations_dir={tmp_path}",
            "data.validation_fraction=0.0",
        ],
    )
    registry.get_builder(config.data, build_if_missing=True, workers=1)
    batch = next(iter(pipeline.train_dataset(config, pipeline.data_source(config.data, "train"))))
    assert batch["frames"].shape == (2, 8, 32, 32, 3) and batch["frames"].dtype == np.uint8
    assert batch["flow_fwd"].shape == (2, 9, 32, 32, 2) and (batch["labels"].sum(1) >= 1).all()
    config.data.worker_count = 1  # the source and its builder pickled into a grain worker process
    from_worker = next(iter(pipeline.train_dataset(config, pipeline.data_source(config.data, "train"))))
    for k in batch:
        np.testing.assert_array_equal(batch[k], from_worker[k])
    with pytest.raises(ValueError, match="no split 'validation'"):
        pipeline.data_source(config.data, "validation")


def test_flow_side_file_gives_the_whole_video_flow_for_every_clip(tmp_path):
    """Flow is read from the split's side file (flow-<split>.f16), not the records: every example's views must
    equal the prepared whole-video arrays, and every clip (each start, so the first and last fields of each
    video, whose neighbours in the file belong to other videos, and end-padded clips) must equal the clip cut
    from those arrays."""
    import pickle

    from input_pipeline import clips
    from input_pipeline.jpeg_frames import DecodedSource, flow_file_name

    m = tmp_path / "videos"
    lengths = {"vid_0000000": 7, "vid_0000001": 20, "vid_0000002": 13}
    for i, (vid, n) in enumerate(lengths.items()):
        _standin(str(m / f"{vid}.mp4"), n=n, size=24, seed=i)
    (tmp_path / "data_train.csv").write_text(HEAD + "".join(f'{v},"3",hammer\n' for v in lengths))
    (tmp_path / "data_eval.csv").write_text(HEAD + 'vid_0000002,"4",hammer\n')
    builder = audible623.build_dataset(
        "audible623",
        str(tmp_path / "tfds"),
        "tiny",
        manual_dir=str(m),
        annotations_dir=str(tmp_path),
        validation_fraction=0.0,
    )
    assert "flow_fwd" not in builder.info.features  # the records hold no flow
    src = pickle.loads(pickle.dumps(DecodedSource(builder.as_data_source("train"))))  # as a grain worker gets it
    side = os.path.join(builder.data_dir, flow_file_name("train"))
    field_bytes = 32 * 32 * 2 * 2
    assert os.path.getsize(side) == sum(2 * (n - 1) for n in (7, 20)) * field_bytes  # vid_0000002 is in test
    for i in range(len(src)):
        e = src[i]
        whole = prep.load_prepared(builder.prepared_dir, e["video_id"].decode())
        n = int(e["num_frames"])
        for key in ("flow_fwd", "flow_bwd"):
            assert e[key].dtype == np.float16 and e[key].shape == (n - 1, 32, 32, 2)
            np.testing.assert_array_equal(e[key], whole[key])
        reference = dict(e, flow_fwd=np.asarray(whole["flow_fwd"]), flow_bwd=np.asarray(whole["flow_bwd"]))
        for clip_len in (1, 3, 8):
            for start in range(clips.FIRST_KEPT, n - clips.FIRST_KEPT):  # up to the last kept frame: padded ends
                got, want = clips.make_clip(e, start, clip_len), clips.make_clip(reference, start, clip_len)
                for key in ("flow_fwd", "flow_bwd", "frames", "num_valid"):
                    np.testing.assert_array_equal(got[key], want[key])
    with open(side, "r+b") as f:  # a truncated side file is named, not read past
        f.truncate(os.path.getsize(side) - field_bytes)
    with pytest.raises(ValueError, match="outside the file"):
        [DecodedSource(builder.as_data_source("train"))[i] for i in range(2)]


# --- ta2net prepare ------------------------------------------------------------------------------
def test_prepare_is_resumable_and_names_failures(tmp_path, capsys):
    from ta2net_jax.cli import main as cli

    src = tmp_path / "in"
    _standin(str(src / "a.mp4"), n=12)
    _standin(str(src / "deep" / "b.avi"), n=10, fps=30.0)
    (src / "c.mp4").write_text("not a video")
    out = tmp_path / "out"
    args = ["prepare", str(src), "--out", str(out), "--size", "16", "--workers", "1"]
    assert cli.main(args) == 1  # c.mp4 failed, the others done
    text = capsys.readouterr()
    assert "c.mp4: not a video file" in text.out and "prepared 2 video(s)" in text.out
    folder = out / "16px-dis-native-max300-q95-crop"
    meta = json.load(open(folder / "a" / "meta.json"))
    assert meta["num_frames"] == 12 and len(os.listdir(folder / "a" / "frames")) == 12
    with np.load(folder / "b" / "flow.npz") as z:
        assert z["flow_bwd"].shape == (9, 16, 16, 2) and z["flow_bwd"].dtype == np.float16
    (folder / ".x.partial-999999999").mkdir()  # left by a killed run (no such pid)
    os.remove(src / "c.mp4")
    mtime = os.path.getmtime(folder / "a" / "meta.json")
    assert cli.main(args) == 0 and "2 already done" in capsys.readouterr().out
    assert os.path.getmtime(folder / "a" / "meta.json") == mtime and not (folder / ".x.partial-999999999").exists()


def test_resampling_selects_nearest_frames():
    assert frame_times.resample_indices(10, 30.0, 15.0).tolist() == [0, 2, 4, 6, 8]
    assert frame_times.resample_indices(5, 10.0, 20.0).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]  # ties round up
    assert frame_times.map_frame_index(np.array([3, 10]), 30.0, 15.0).tolist() == [2, 5]
