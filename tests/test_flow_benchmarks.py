"""The flow benchmarks' own logic on tiny inputs (benchmarks/flow_estimators.py, benchmarks/tvl1_profile.py):
the rows they write and the pairs they time, so that a GPU run of them (scripts/gpu_check.sh) does not fail
on plumbing."""

import json
import os

import numpy as np
from benchmark_scripts import REPO, load_benchmark

from input_pipeline.flow import to_gray
from input_pipeline.synthetic import SceneConfig, generate_video


def test_flow_benchmark_throughput_rows(tmp_path):
    """benchmarks/flow_estimators.py --jax-throughput (issue 16's GPU figure): two full calls of the given
    size, fwd + bwd, on tiled videos, on the videos packed and on one long video, rows appended to --jsonl;
    RESULTS.md and results.jsonl left alone with --no-write."""
    bench = load_benchmark("flow_estimators")
    assert len(set(bench.ALL_METHODS)) == len(bench.ALL_METHODS)  # each method is one row of the table
    videos = [generate_video(seed, SceneConfig(height=24, width=24, num_frames=4)) for seed in range(2)]
    rows = bench.jax_throughput(videos, 4)
    assert [r["frames"] for r in rows] == ["tiled videos", "videos packed", "one video"]  # with cuts, without
    assert all(r["pairs_per_call"] == 4 and r["fields"] == 8 and r["pairs_per_s"] > 0 for r in rows)

    out = tmp_path / "flow.jsonl"
    results = os.path.join(REPO, "benchmarks", "results.jsonl")
    before = os.path.getmtime(results) if os.path.exists(results) else None
    bench.main(
        ["--methods", "", "--size", "24", "--num-videos", "1", "--num-frames", "4", "--jax-throughput", "2",
         "--jax-compaction", "1", "--no-write", "--jsonl", str(out)]
    )  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["bench"], r["size"], r["pairs_per_call"]) for r in rows] == [("flow_throughput", 24, 2)] * 3
    assert all(r["compaction"] == 1 for r in rows)  # --jax-compaction reaches estimate_flow_batch's rows
    assert (os.path.getmtime(results) if os.path.exists(results) else None) == before


def test_tvl1_profile_benchmark_rows(tmp_path):
    """benchmarks/tvl1_profile.py (where tvl1-jax's time goes on a device): a row per (call size, schedule),
    then the building blocks' costs; its pairs never span two videos (a cut would never stop)."""
    bench = load_benchmark("tvl1_profile")
    i0, i1 = bench._frames(24, 250)  # the 8 videos' 248 pairs, then the first two again
    grey = [to_gray(generate_video(seed, SceneConfig(height=24, width=24, num_frames=32)).frames) for seed in range(2)]
    np.testing.assert_array_equal(i0[30:33], np.concatenate([grey[0][30:31], grey[1][:2]]))
    np.testing.assert_array_equal(i1[30:33], np.concatenate([grey[0][31:32], grey[1][1:3]]))
    np.testing.assert_array_equal(i0[248:], i0[:2])
    spread, _ = bench._frames(24, 8)  # fewer: one pair from each video
    np.testing.assert_array_equal(spread[:2], np.stack([grey[0][0], grey[1][0]]))

    out = tmp_path / "tvl1.jsonl"
    bench.main(
        ["--size", "24", "--pairs", "2", "--repeats", "1", "--op-calls", "2", "--compaction", "0", "1",
         "--alone", "2", "--jsonl", str(out)]
    )  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [(r["pairs"], r.get("schedule"), r.get("compaction")) for r in rows[:3]]
    assert kinds == [(2, "default", 0), (2, "default", 1), (2, "fixed", None)]
    assert all(r["pairs_per_s"] > 0 for r in rows[:3])
    assert rows[3]["alone_pairs"] == 2 and rows[3]["alone_schedule_share"] > 0
    assert {"primal_dual_step_ms", "median_filter_ms", "warp_ms"} <= set(rows[4])
    assert rows[4]["step_roofline_ms"] is None  # the CPU has no rated bandwidth in the table


def test_tvl1_settings_on_a_real_clip_prints_speeds_and_draws_the_fastest_pair(tmp_path, capsys):
    """benchmarks/tvl1_settings.py --video --plot on a drumstick clip at 32 px: one speed per pair for each flow
    (DIS, tvl1-jax, started from DIS, image-driven, without the median), the summary line, and a PNG of the pair
    DIS sees fastest."""
    from tests.conftest import realdata

    bench = load_benchmark("tvl1_settings")
    clip = realdata("greatest_hits_condfoleygen", "hitting_metal.mp4")
    png = tmp_path / "fastest.png"
    speeds = bench.fast_motion(clip, 32, 2.0, str(png))
    assert list(speeds) == ["DIS", "tvl1-jax", "tvl1-jax from DIS", "tvl1-jax image-driven", "tvl1-jax no median"]
    pairs = {len(v) for v in speeds.values()}
    assert len(pairs) == 1 and pairs.pop() > 10
    assert all(np.all(np.isfinite(v)) and np.all(v >= 0) for v in speeds.values())
    out = capsys.readouterr().out
    assert "pairs where DIS's is ≥ 2 px/frame" in out and f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
