"""The real-clip benchmark (issue 12, real_benchmark.py) on the labelled clips of ../shared/realdata, with the
training-free detectors (no trained run): both pickings per clip, the in-sample marking of a default that was
chosen on these clips, and that the shipped inflection default is the threshold the benchmark itself finds."""

import json
import os

import numpy as np
import pytest
from conftest import realdata

from ta2net_jax.detection import detectors
from ta2net_jax.evaluation import real_benchmark


def test_inflection_default_is_the_all_clips_optimum_and_is_marked_in_sample():
    root = os.path.dirname(os.path.dirname(realdata("greatest_hits_condfoleygen", "audio_onsets.json")))
    result = real_benchmark.run_benchmark(root, methods=("inflection", "reference"))
    inflection, reference = result["methods"]["inflection"], result["methods"]["reference"]
    assert detectors.get("inflection").default_fitted_on_real_clips
    assert inflection["default_fitted_here"] and not reference["default_fitted_here"]
    # The shipped threshold sits on the pooled-F1 optimum over all labelled clips (a plateau: any threshold on
    # it scores the same), i.e. the constant in detectors.py is what this benchmark measures.
    assert inflection["default_pooled_f1_tol3"] >= inflection["all_clips_pooled_f1_tol3"] - 0.01
    variants = {r["variant"] for r in inflection["rows"]}
    assert variants == {"default*", "LOO"} and {r["variant"] for r in reference["rows"]} == {"default", "LOO"}
    clips = {(r["set"], r["id"]) for r in inflection["rows"]}
    assert {s for s, _ in clips} == set(real_benchmark.SETS) and len(clips) >= 4
    text = real_benchmark.tables(result)
    assert "| inflection | default* |" in text and "in-sample" in text
    assert len(inflection["counting"]) == len(reference["counting"]) >= 1
    # The soccer clip's 39 repeated frames (a 25 → 29.97 fps conversion) are dropped; the reference keeps all.
    repeated = {os.path.basename(path): frames for path, frames in inflection["repeated_frames"].items()}
    assert list(repeated) == ["v_SoccerJuggling_g23_c01.avi"] and len(repeated["v_SoccerJuggling_g23_c01.avi"]) == 39
    assert reference["repeated_frames"] == {}


def test_flow_option_changes_every_method_but_the_reference(tmp_path, monkeypatch):
    """`real-benchmark --flow NAME` scores inflection (and the model) on that flow, as `detect --flow` does;
    the reference is defined on DIS and keeps it. Two clips of one set (the LOO needs two), fast Farnebäck."""
    from ta2net_jax.cli import main as cli

    root = os.path.dirname(os.path.dirname(realdata("greatest_hits_condfoleygen", "audio_onsets.json")))
    monkeypatch.setattr(real_benchmark, "SETS", {"greatest_hits": real_benchmark.SETS["greatest_hits"]})
    monkeypatch.setattr(real_benchmark, "COUNT_SETS", {})
    text = real_benchmark.benchmark(root, str(tmp_path), flow="farneback")
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["flow"] == "farneback"
    assert result["methods"]["inflection"]["input"]["flow"] == "farneback"
    assert result["methods"]["reference"]["input"]["flow"] == "dis"
    assert text.startswith("Optical flow `farneback`") and len(result["methods"]["inflection"]["rows"]) == 4
    # The threshold sweep: at factor 1 it is the default rows' set mean; plotted, and summarised in the tables.
    for method, d in result["methods"].items():
        sweep = d["threshold_sweep"]
        defaults = [r["f1_tol3"] for r in d["rows"] if r["variant"].startswith("default")]
        assert sweep["mean"][sweep["factors"].index(1.0)] == pytest.approx(np.mean(defaults)), method
    assert (tmp_path / "threshold_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "How much the threshold moves it" in text and "| reference |" in text.split("How much")[1]
    args = cli._parser().parse_args(["real-benchmark", "--flow", "tvl1-jax"])
    assert args.flow == "tvl1-jax"


def test_threshold_sweep_scales_every_clips_own_threshold():
    """A clip scored in phases keeps its own (phase) threshold under the sweep: each clip's picking is scaled."""
    from ta2net_jax.detection.events import Picking

    scores = np.zeros(60)
    scores[[10, 30, 50]] = [0.9, 0.6, 0.45]  # three peaks, 20 frames apart
    gt = np.array([10, 30])

    def clip(name, threshold):
        return {"set": name, "scores": scores, "fps": 25.0, "picking": Picking(threshold=threshold), "gt": gt}

    sweep = real_benchmark.threshold_sweep([clip("a", 0.5), clip("b", 0.7)])
    at = dict(zip(sweep["factors"], zip(sweep["per_set"]["a"], sweep["per_set"]["b"])))
    # a: 0.5 keeps 0.9, 0.6 (F1 1); × 0.8 = 0.4 adds the false 0.45 (F1 0.8). b: 0.7 keeps 0.9 only (F1 2/3);
    # × 0.85 = 0.595 adds 0.6 (F1 1); × 0.8 = 0.56 the same.
    assert at[1.0] == pytest.approx((1.0, 2 / 3)) and at[0.8] == pytest.approx((0.8, 1.0))
    assert sweep["mean"][sweep["factors"].index(1.0)] == pytest.approx((1.0 + 2 / 3) / 2)
    assert real_benchmark.sweep_band(sweep) == (min(sweep["mean"][4:13]), max(sweep["mean"][4:13]))
