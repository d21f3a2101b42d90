"""Learning from sound end to end: synthetic videos with a rendered soundtrack (a click per exact event, sound
one frame late) become the `audio_onsets` dataset through `ta2net build`, labelled by their onsets after the
estimated lag, and `ta2net train --init-from` fine-tunes a trained run on them."""

import json
import os

import numpy as np
from conftest import REPO

from input_pipeline import pipeline, registry, synthetic_audio
from input_pipeline.synthetic import SceneConfig, generate_video
from ta2net_jax.cli import main as cli
from ta2net_jax.config_utils import load_config

FPS, LAG, NUM_FRAMES, SIZE = 25.0, 1, 50, 48
SEEDS = (5, 8, 9)  # contacts >= 3 frames apart: one onset each (tests/test_audio_labels.py)


def test_audio_labelled_folder_builds_and_fine_tunes_a_trained_run(reference, tmp_path, capsys):
    manual = tmp_path / "videos"
    manual.mkdir()
    exact = {}
    for seed in SEEDS:
        video = generate_video(seed, SceneConfig(height=SIZE, width=SIZE, num_frames=NUM_FRAMES, fps=FPS))
        frames = sorted({e.frame for e in video.events})
        track = synthetic_audio.render_soundtrack(frames, FPS, NUM_FRAMES, lag_s=LAG / FPS)
        synthetic_audio.write_video_with_audio(str(manual / f"clip{seed}.mp4"), video.frames, FPS, track, 22050)
        exact[f"clip{seed}"] = [f for f in frames if f + LAG < NUM_FRAMES - 0.5]  # clicks inside the track
    synthetic_audio.write_video_with_audio(str(manual / "silent.mp4"), video.frames, FPS, None, 22050)

    # `ta2net prepare --labels audio`: the same labels as a --labels file beside the prepared videos.
    prepared = tmp_path / "prepared"
    prep = ["prepare", str(manual), "--out", str(prepared), "--size", "32", "--workers", "1", "--labels", "audio"]
    assert cli.main(prep) == 0
    (tag,) = os.listdir(prepared)
    labels = json.load(open(prepared / tag / "audio_labels.json"))
    assert {k: v["frames"] for k, v in labels.items()} == {f"{k}.mp4": v for k, v in exact.items()}
    assert list(json.load(open(prepared / tag / "audio_labels_report.json"))["rejected"]) == [
        str(manual / "silent.mp4")
    ]

    donor = reference["workdir"]  # a trained run to start from (the session's reference run; only read)

    config = os.path.join(REPO, "configs", "audio_onsets.py:smoke")
    data = [f"--config.data.manual_dir={manual}", f"--config.data.data_dir={tmp_path / 'tfds'}"]
    assert cli.main(["build", "--config", config, "--workers", "1", *data]) == 0
    cfg = load_config(config, [a[len("--config.") :] for a in data])
    report = json.load(open(os.path.join(registry.get_builder(cfg.data).data_dir, "build_report.json")))
    assert report["audio_labels"]["lag_frames"] == LAG
    assert [a["video_id"] for a in report["anomalies"] if a["kind"] == "rejected_soundtrack"] == ["silent"]
    # The labels: every kept clip's events are its exact event frames (the lag removed), strengths ride along.
    stored = {}
    for split in ("train", "validation", "test"):
        try:
            examples = pipeline.data_source(cfg.data, split)
        except ValueError:
            continue
        for i in range(len(examples)):
            ex = examples[i]
            stored[str(ex["id"], "utf-8") if isinstance(ex["id"], bytes) else str(ex["id"])] = ex
    assert set(stored) == set(exact)  # the silent clip is left out
    for key, ex in stored.items():
        assert ex["event_frames"].tolist() == exact[key], key
        assert ex["event_strengths"].shape == ex["event_frames"].shape and (ex["event_strengths"] > 0).all()

    run = str(tmp_path / "finetuned")
    args = ["train", "--config", config, "--workdir", run, "--init-from", donor, *data]
    capsys.readouterr()
    # The donor was trained on 8-frame clips: a 16-frame temporal head does not take its weights.
    assert cli.main(args) == 1
    assert "sim_decoder.input_projection.kernel" in capsys.readouterr().err
    assert cli.main([*args, "--config.data.num_frames=8"]) == 0
    err = capsys.readouterr().err
    assert f"initialised from {donor}" in err
    log = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
