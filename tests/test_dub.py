"""Dubbing (impact sounds at events, video remuxed untouched, mix modes) and the cue files."""

import av
import numpy as np
import pytest

from input_pipeline import audio, synthetic_audio
from input_pipeline.video import read_video
from ta2net_jax.detection import cues, dub

FPS = 25.0
NUM_FRAMES = 50
EVENTS = [6, 17, 30, 41]
TONE_HZ = 1000.0


def _frames(n: int = NUM_FRAMES, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 48 px, 50-frame, 25 fps H.264 video whose own soundtrack is a steady 1 kHz tone (no onsets)."""
    path = str(tmp_path_factory.mktemp("dub") / "source.mp4")
    t_s = np.arange(int(NUM_FRAMES / FPS * 48000)) / 48000
    tone = (0.2 * np.sin(2 * np.pi * TONE_HZ * t_s)).astype(np.float32)
    synthetic_audio.write_video_with_audio(path, _frames(), FPS, tone, 48000)
    return path


def _tone_level(samples: np.ndarray, rate: int, begin_s: float, end_s: float) -> float:
    """Amplitude of the 1 kHz component between two times (the tone's level where no impact sounds)."""
    seg = samples[int(begin_s * rate) : int(end_s * rate)].astype(np.float64)
    t_s = np.arange(seg.size) / rate
    return float(2 * np.abs(np.mean(seg * np.exp(-2j * np.pi * TONE_HZ * t_s))))


def _onset_frames(path: str) -> list[int]:
    samples, rate = audio.read_audio(path, 22050, align_to_video=True)
    onsets = audio.detect_onsets(samples, rate)
    return audio.onsets_to_frames(onsets.times_s - onsets.latency_s, FPS, NUM_FRAMES).tolist()


@pytest.mark.parametrize("mix", ["replace", "original"])
def test_dubbed_onsets_are_the_events_and_frames_are_untouched(source, tmp_path, mix):
    out = tmp_path / f"dubbed_{mix}.mp4"
    result = dub.dub_video(source, EVENTS, out, scores=[1.0, 0.5, 0.8, 0.3], mix=mix)
    assert result.video_remuxed and result.note == "" and result.num_events == len(EVENTS)
    assert result.original_audio == (mix == "original")
    found = _onset_frames(str(out))
    assert len(found) == len(EVENTS)
    assert np.max(np.abs(np.asarray(found) - EVENTS)) <= 1, found
    before, after = read_video(source), read_video(out)
    assert after.fps == before.fps and np.array_equal(after.frames, before.frames)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.name == "aac"


def test_mix_original_keeps_the_soundtrack_and_replace_drops_it(source, tmp_path):
    levels = {}
    for mix in ("original", "replace"):
        out = tmp_path / f"{mix}.mp4"
        dub.dub_video(source, EVENTS, out, mix=mix, sound_kind="click")
        samples, rate = audio.read_audio(out, None)
        # between events 6 and 17: 0.4-0.6 s is past the 40 ms click and before the next one
        levels[mix] = _tone_level(samples, rate, 0.40, 0.60)
    src, rate = audio.read_audio(source, None)
    assert abs(levels["original"] - _tone_level(src, rate, 0.40, 0.60)) < 0.02
    assert levels["original"] > 0.15 and levels["replace"] < 0.005


def test_scores_scale_the_impacts(source, tmp_path):
    out = tmp_path / "scaled.mkv"
    result = dub.dub_video(source, [10, 30], out, scores=[2.0, 1.0], mix="replace", sound_kind="click")
    assert result.audio_codec == "pcm_s16le" and result.video_remuxed
    samples, rate = audio.read_audio(out, None)
    peak = [np.max(np.abs(samples[int(f / FPS * rate) : int((f + 2) / FPS * rate)])) for f in (10, 30)]
    assert peak[0] == pytest.approx(0.9, abs=0.01) and peak[1] == pytest.approx(0.45, abs=0.01)


def test_wav_sound_and_reencode_fallback(source, tmp_path):
    wav = tmp_path / "knock.wav"
    with av.open(str(wav), "w") as c:
        stream = c.add_stream("pcm_s16le", rate=16000, layout="mono")
        knock = np.sin(2 * np.pi * 300 * np.arange(800) / 16000) * np.exp(-np.arange(800) / 200) * 20000
        frame = av.AudioFrame.from_ndarray(knock.astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)
    out = tmp_path / "dubbed.webm"  # WebM cannot hold H.264: the video is re-encoded, and the result says so
    result = dub.dub_video(source, EVENTS, out, sound=wav, mix="replace")
    assert not result.video_remuxed and "re-encoded" in result.note and result.audio_codec == "libopus"
    after = read_video(out)
    assert len(after.frames) == NUM_FRAMES and after.fps == FPS
    found = _onset_frames(str(out))
    assert len(found) == len(EVENTS) and np.max(np.abs(np.asarray(found) - EVENTS)) <= 1, found


def test_dub_rejects_bad_arguments(source, tmp_path):
    with pytest.raises(ValueError, match="mix"):
        dub.dub_video(source, EVENTS, tmp_path / "x.mp4", mix="overlay")
    with pytest.raises(ValueError, match=r"\[0, 50\)"):
        dub.dub_video(source, [3, 50], tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="scores"):
        dub.dub_video(source, EVENTS, tmp_path / "x.mp4", scores=[1.0])
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("fps", [25.0, 15.0, 30000 / 1001, 24000 / 1001, 60000 / 1001])
def test_cue_files_parse_back_to_the_same_frames(tmp_path, fps):
    frames = [0, 3, 29, 1799, 1800, 17982, 107893]
    scores = [0.5, 1.25, 3.0, 0.01, 2.0, 1.0, 0.75]
    cues.write_srt(frames, fps, tmp_path / "e.srt", scores=scores)
    cues.write_cue_csv(frames, fps, tmp_path / "e.csv", scores=scores)
    cues.write_edl(frames, fps, tmp_path / "e.edl", scores=scores)
    srt = cues.read_srt(tmp_path / "e.srt")
    assert [round(start_s * fps) for start_s, _, _ in srt] == frames
    assert all(abs(start_s - f / fps) <= 0.0005 for (start_s, _, _), f in zip(srt, frames))
    assert [text for _, _, text in srt][1] == "impact (frame 3, score 1.25)"
    rows = cues.read_cue_csv(tmp_path / "e.csv")
    assert [r["frame"] for r in rows] == frames and [r["score"] for r in rows] == scores
    assert all(abs(r["time_s"] - f / fps) < 1e-6 for r, f in zip(rows, frames))
    edl = cues.read_edl(tmp_path / "e.edl", fps)
    assert [e["record_in"] for e in edl] == frames and [e["record_out"] for e in edl] == [f + 1 for f in frames]
    assert all(cues.timecode_to_frames(r["timecode"], fps) == f for r, f in zip(rows, frames))


def test_drop_frame_timecode_known_values():
    ntsc = 30000 / 1001
    assert cues.frames_to_timecode(1799, ntsc) == "00:00:59;29"
    assert cues.frames_to_timecode(1800, ntsc) == "00:01:00;02"  # labels ;00 and ;01 are dropped
    assert cues.frames_to_timecode(17982, ntsc) == "00:10:00;00"  # ...except every tenth minute
    assert cues.frames_to_timecode(107892, ntsc) == "01:00:00;00"  # drop-frame stays on the clock
    assert cues.frames_to_timecode(3600 * 25, 25.0) == "01:00:00:00"
    for frame in range(0, 40000, 7):
        assert cues.timecode_to_frames(cues.frames_to_timecode(frame, ntsc), ntsc) == frame


def test_write_cue_file_picks_the_format_by_suffix(tmp_path):
    for suffix in cues.CUE_SUFFIXES:
        cues.write_cue_file(tmp_path / f"e{suffix}", [5, 9], 25.0, scores=[1.0, 2.0])
    assert [e["record_in"] for e in cues.read_edl(tmp_path / "e.edl", 25.0)] == [5, 9]
    assert [r["frame"] for r in cues.read_cue_csv(tmp_path / "e.csv")] == [5, 9]
    with pytest.raises(ValueError, match="unknown cue format"):
        cues.write_cue_file(tmp_path / "e.txt", [5], 25.0)


def test_ta2net_detect_dub_and_cues(tmp_path, capsys):
    # A video with a flash at each event frame; the training-free detector finds them, --dub puts an impact
    # on each detected event and --cues lists them.
    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection import detectors

    frames = np.full((NUM_FRAMES, 48, 48, 3), 40, np.uint8)
    for f in EVENTS:  # a bright square that jumps in and out: abrupt motion at the event frames
        frames[f, 10:30, 10:30] = 255
    video = str(tmp_path / "flashes.mp4")
    synthetic_audio.write_video_with_audio(video, frames, FPS, None, 48000)
    out, dubbed, srt = tmp_path / "e.json", str(tmp_path / "dubbed.mp4"), str(tmp_path / "cues.srt")
    assert "inflection" in detectors.names()
    args = ["detect", video, "--method", "inflection", "--out", str(out), "--dub", dubbed, "--cues", srt]
    assert cli.main(args) == 0
    import json

    detected = [e["frame"] for e in json.loads(out.read_text())["events"]]
    assert detected, "no events detected"
    assert _onset_frames(dubbed) == detected
    assert [round(start * FPS) for start, _, _ in cues.read_srt(srt)] == detected
    np.testing.assert_array_equal(read_video(dubbed).frames, read_video(video).frames)
    assert "dubbed:" in capsys.readouterr().out
    # Unknown formats are refused before any work.
    assert cli.main(["detect", video, "--cues", str(tmp_path / "c.txt")]) == 1
    assert cli.main(["detect", video, "--dub", str(tmp_path / "d.gif")]) == 1
    assert not (tmp_path / "c.txt").exists() and not (tmp_path / "d.gif").exists()
