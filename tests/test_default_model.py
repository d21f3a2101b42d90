"""The default detector: its config's contact term, training, evaluation and bundling with a locator, the
packaged model that `ta2net detect VIDEO` uses without --workdir, and the event sheet."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO, realdata

from input_pipeline.datasets.synthetic_configs import BUILDER_CONFIGS
from ta2net_jax import losses
from ta2net_jax.config_utils import load_config
from ta2net_jax.evaluation import localisation


def _outputs(rng, b=4, t=6, d=8, h=2):
    return {
        "logits": jnp.asarray(rng.standard_normal((b, t, 2)), jnp.float32),
        "fg": jnp.asarray(rng.standard_normal((b, t, d)), jnp.float32),
        "bg": jnp.asarray(rng.standard_normal((b, t, d)), jnp.float32),
        "source_map": jnp.asarray(rng.uniform(0.1, 0.9, (b, t, h, h)), jnp.float32),
    }


def test_paper_config_has_no_contact_term_and_default_detector_has_one():
    rng = np.random.default_rng(1)
    outputs = _outputs(rng)
    labels = jnp.asarray(np.eye(6, dtype=np.int32)[[0, 2, 3, 5]])
    contact_xy = jnp.asarray(np.where(np.asarray(labels)[..., None] > 0, 0.3, -1.0), jnp.float32)
    paper = load_config(os.path.join(REPO, "configs", "audible623.py"))
    assert paper.loss.contact_weight == 0.0
    total, terms = losses.ta2net_loss(outputs, labels, jax.random.key(0), paper.loss, contact_xy)
    assert set(terms) == {"focal", "soft_ce", "fb", "tmp"}  # the original's four terms, nothing else
    same, _ = losses.ta2net_loss(outputs, labels, jax.random.key(0), paper.loss)
    assert float(total) == float(same)
    default = load_config(os.path.join(REPO, "configs", "default_detector.py"))
    assert default.loss.contact_weight > 0 and default.data.builder_config == "v2_64"
    total, terms = losses.ta2net_loss(outputs, labels, jax.random.key(0), default.loss, contact_xy)
    assert set(terms) == {"focal", "soft_ce", "fb", "tmp", "contact"} and float(terms["contact"]) > 0
    with pytest.raises(ValueError, match="contact_weight"):
        losses.ta2net_loss(outputs, labels, jax.random.key(0), default.loss)
    assert tuple(default.data.get("mixture", ())) == ()
    mixed = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25"))
    assert tuple(map(tuple, mixed.data.mixture)) == (("small", 0.25),) and mixed.data.builder_config == "v2_64"
    assert mixed.train.num_steps == 1000 and mixed.optim.base_lr < default.optim.base_lr
    # Flow-estimator mixture: a quarter of the clips with TV-L1 flow, the run's own flow stays DIS.
    flow_mixed = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,flow_mix=0.25"))
    assert tuple(map(tuple, flow_mixed.data.mixture)) == (("small", 0.25), ("v2_64_240", 0.25, "tvl1-jax"))
    assert flow_mixed.data.flow_method == "dis" and flow_mixed.train.num_steps < mixed.train.num_steps
    # Thud mixture: a quarter of the clips from the preset whose bodies may stop dead on impact.
    thud_mixed = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,thud_mix=0.25"))
    assert tuple(map(tuple, thud_mixed.data.mixture)) == (("small", 0.25), ("v2_64_thud", 0.25))
    assert thud_mixed.train.num_steps == flow_mixed.train.num_steps
    jab_mixed = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,jab_mix=0.25"))
    assert tuple(map(tuple, jab_mixed.data.mixture)) == (("small", 0.25), ("v2_64_jabs", 0.25))
    assert jab_mixed.train.num_steps == flow_mixed.train.num_steps
    # A second renderer: a quarter of the clips from the perspective generator's training scenes.
    persp_mixed = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,persp_mix=0.25"))
    assert tuple(map(tuple, persp_mixed.data.mixture)) == (("small", 0.25), ("perspective_64", 0.25))
    assert persp_mixed.train.num_steps == flow_mixed.train.num_steps
    smoke_persp = load_config(os.path.join(REPO, "configs", "default_detector.py:smoke,persp_mix=0.25"))
    assert tuple(map(tuple, smoke_persp.data.mixture)) == (("perspective_tiny", 0.25),)
    # The paper's input size: the same videos at 112² (a 7×7 map at /16), a stage from a 64 px model.
    paper_size = load_config(os.path.join(REPO, "configs", "default_detector.py:size=112"))
    assert (paper_size.data.builder_config, paper_size.data.image_size) == ("v2_112", 112)
    assert tuple(paper_size.model.trunk.strides) == tuple(default.model.trunk.strides)
    assert paper_size.train.num_steps < default.train.num_steps and paper_size.loss.contact_weight > 0
    # More scenes of one renderer: all 2,000 of generator v2's training renders, v2_64's 720 first; the same
    # validation and test videos (seeds are split offset + index, so a prefix is the smaller config's videos).
    more = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,videos=2000"))
    assert more.data.builder_config == "v2_64_2000" and more.train.num_steps == mixed.train.num_steps
    splits = {name: dict(BUILDER_CONFIGS[name].split_sizes) for name in ("v2_64", "v2_64_2000")}
    assert splits["v2_64_2000"] == {**splits["v2_64"], "train": 2000}
    assert all(BUILDER_CONFIGS["v2_64_2000"].seed == BUILDER_CONFIGS[n].seed == 0 for n in ("v2", "v2_64"))
    with pytest.raises(ValueError, match=r"videos=2000.*\(size, videos\)"):
        load_config(os.path.join(REPO, "configs", "default_detector.py:size=112,videos=2000"))
    # A wider network: every trunk's channels and the projection doubled, the rest of stage 1 as it is.
    wide = load_config(os.path.join(REPO, "configs", "default_detector.py:width=2"))
    assert tuple(wide.model.trunk.widths) == tuple(2 * w for w in default.model.trunk.widths)
    assert wide.model.trunk.stem_width == 2 * default.model.trunk.stem_width
    assert wide.model.proj_features == 2 * default.model.proj_features
    assert wide.train.num_steps == default.train.num_steps and wide.data.builder_config == "v2_64"
    # Quarter turns: only the augmentation changes (off by default).
    turned = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,rotate=0.5"))
    assert default.data.rotate == 0.0 and turned.data.rotate == 0.5
    assert turned.train.num_steps == mixed.train.num_steps and turned.data.mixture == mixed.data.mixture
    # Speed randomisation and clips from anywhere: likewise augmentation / sampling only, checked at load.
    varied = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,flow_gain=2,anywhere=0.5"))
    assert (varied.data.flow_gain, varied.data.clips_anywhere) == (2.0, 0.5)
    assert default.data.get("flow_gain", 1.0) == 1.0 and default.data.get("clips_anywhere", 0.0) == 0.0
    assert varied.train.num_steps == mixed.train.num_steps and varied.data.mixture == mixed.data.mixture
    backwards = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,reverse=0.5"))
    assert backwards.data.time_reverse == 0.5 and default.data.get("time_reverse", 0.0) == 0.0
    assert backwards.data.mixture == mixed.data.mixture
    sharp = load_config(os.path.join(REPO, "configs", "default_detector.py:mix_small=0.25,label_sigma=0.5"))
    assert sharp.loss.blur_sigma == 0.5 and default.loss.blur_sigma == 2.0 and sharp.data.mixture == mixed.data.mixture
    fraction = r"in \[0, 1\]"
    bad_variants = (("flow_gain=0.5", "give F ≥ 1"), ("anywhere=2", fraction), ("reverse=1.5", fraction))
    for bad, message in (*bad_variants, ("label_sigma=0", "give σ > 0")):
        with pytest.raises(ValueError, match=message):
            load_config(os.path.join(REPO, "configs", f"default_detector.py:{bad}"))


@pytest.fixture(scope="module")
def v2_tiny_run(tmp_path_factory):
    """configs/default_detector.py:smoke,mix_small=0.5 (v2_tiny with v1's `tiny` mixed in, contact loss on)
    trained 2 steps and evaluated."""
    from input_pipeline.datasets import synthetic_collisions
    from ta2net_jax.evaluation.evaluate import evaluate
    from ta2net_jax.train import train_and_evaluate

    root = tmp_path_factory.mktemp("default_detector")
    data_dir = str(root / "tfds")
    for name in ("v2_tiny", "tiny"):
        synthetic_collisions.build_dataset(data_dir, name, workers=1)
    config = load_config(
        os.path.join(REPO, "configs", "default_detector.py:smoke,mix_small=0.5"),
        [f"data.data_dir={data_dir}", "data.num_frames=8"],
    )
    workdir = str(root / "run")
    last = train_and_evaluate(config, workdir, progress=False)
    evaluate(config, workdir, progress=False)
    return config, workdir, last


def test_default_detector_trains_evaluates_and_bundles(v2_tiny_run, tmp_path):
    from ta2net_jax.cli import main as cli

    config, workdir, last = v2_tiny_run
    assert "contact" in last and np.isfinite(last["contact"])
    assert tuple(map(tuple, config.data.mixture)) == (("tiny", 0.5),)
    result = json.load(open(os.path.join(workdir, "eval.json")))
    assert set(result["spatial"]["localisation"]["locators"]) == set(localisation.LOCATORS)
    # The config's separation in seconds is what the thresholds were tuned with and what detect gets.
    tuned = json.load(open(os.path.join(workdir, "detector.json")))
    for name in ("model", "inflection"):
        assert tuned[f"{name}_picking"]["min_separation_s"] in config.eval.min_separation_s
        assert tuned[f"{name}_picking"]["prominence_window_s"] in config.eval.prominence_windows_s
    assert result["inference"]["min_separation_s"] == tuned["model_picking"]["min_separation_s"]
    assert tuned["hflip_tta"] is False and result["inference"]["hflip_tta"] is False  # eval.hflip_tta's default
    # The analysis rate was chosen on validation among the config's bounds and the native rate (rate_tuning.py).
    rate = tuned["analysis_rate"]
    f1_by_bound = rate["validation_f1_by_max_fps"]
    assert set(f1_by_bound) == {"native", "20", "30"} and rate["max_fps"] in (None, 20.0, 30.0)
    chosen = "native" if rate["max_fps"] is None else f"{rate['max_fps']:g}"
    assert f1_by_bound[chosen] == max(f1_by_bound.values()) and result["analysis_rate"] == rate
    bundle_dir = tmp_path / "bundle"
    assert cli.main(["export", "--workdir", workdir, "--format", "bundle", "--out", str(bundle_dir)]) == 0
    assert sorted(os.listdir(bundle_dir)) == ["config.json", "detector.json", "model.safetensors"]
    # The bundle states its whole input, so loading it never asks the dataset's TFDS builder (packaging test).
    bundled = json.load(open(bundle_dir / "config.json"))["data"]
    stated = (bundled["image_size"], bundled["flow_method"], bundled["crop_borders"])
    assert stated == (config.data.image_size, "dis", True)
    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    from_run, from_bundle = tmp_path / "run.json", tmp_path / "bundle.json"
    assert cli.main(["detect", video, "--workdir", workdir, "--out", str(from_run)]) == 0
    assert cli.main(["detect", video, "--workdir", str(bundle_dir), "--out", str(from_bundle)]) == 0
    a, b = json.load(open(from_run)), json.load(open(from_bundle))
    assert a["method"] == b["method"] == "model"
    np.testing.assert_array_equal(np.array(a["scores"], float), np.array(b["scores"], float))
    assert a["events"] == b["events"]


def test_bundle_locator_gives_the_maps_and_keeps_the_timing(v2_tiny_run, tmp_path):
    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection.detect import VideoDetector

    _, workdir, _ = v2_tiny_run
    plain, located = tmp_path / "plain", tmp_path / "located"
    assert cli.main(["export", "--workdir", workdir, "--format", "bundle", "--out", str(plain)]) == 0
    args = ["export", "--workdir", workdir, "--format", "bundle", "--out", str(located), "--locator", workdir]
    assert cli.main(args) == 0
    # The locator is told its map runs the other way round: the maps (and so the locations) must come from it.
    tuned_path = located / "locator" / "detector.json"
    tuned = json.load(open(tuned_path))
    json.dump({**tuned, "map_polarity": "inverted"}, open(tuned_path, "w"))
    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    a, b = VideoDetector(workdir=str(plain)).analyse(video), VideoDetector(workdir=str(located)).analyse(video)
    np.testing.assert_array_equal(a["scores"], b["scores"])
    assert [e["frame"] for e in a["events"]] == [e["frame"] for e in b["events"]]
    np.testing.assert_allclose(b["maps"], 1.0 - a["maps"], atol=1e-6)
    assert VideoDetector(workdir=str(located)).detector.describe()["locator"]["map_polarity"] == "inverted"
    config_path = located / "locator" / "config.json"
    config = json.load(open(config_path))
    config["data"]["flow_method"] = "farneback"
    json.dump(config, open(config_path, "w"))
    with pytest.raises(ValueError, match="the locator takes .*farneback"):
        VideoDetector(workdir=str(located))
    with pytest.raises(ValueError, match="--locator goes with --format bundle"):
        from ta2net_jax.export.exporters import export

        export(workdir, "safetensors", str(tmp_path / "m.safetensors"), locator=workdir)


def _perturbed_copy(bundle_dir):
    """A bundle whose kernels are scaled by 1.3: another model with the same names and input."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    path = os.path.join(bundle_dir, "model.safetensors")
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    tensors = {k: (v * 1.3 if k.endswith("kernel") else v) for k, v in load_file(path).items()}
    save_file(tensors, path, metadata=metadata)


def test_timing_blended_with_a_locator(v2_tiny_run, tmp_path):
    """`ta2net eval --locator` tunes the picking on (1 − w)·P_model + w·P_locator; detect (run or bundle)
    blends the same way; export insists on the locator the picking was tuned with."""
    import shutil

    from ta2net_jax.cli import main as cli
    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.evaluation.evaluate import evaluate
    from ta2net_jax.export.exporters import export

    config, original, _ = v2_tiny_run
    workdir, locator = str(tmp_path / "run"), str(tmp_path / "loc")
    shutil.copytree(original, workdir)  # the module's run keeps its own detector.json
    assert cli.main(["export", "--workdir", original, "--format", "bundle", "--out", locator]) == 0
    _perturbed_copy(locator)
    blended_config = load_config(
        os.path.join(REPO, "configs", "default_detector.py:smoke,mix_small=0.5"),
        [f"data.data_dir={config.data.data_dir}", "data.num_frames=8", "eval.locator_timing_weights=(0.5,)"],
    )
    result = evaluate(blended_config, workdir, progress=False, report=False, locator=locator)
    tuned = json.load(open(os.path.join(workdir, "detector.json")))
    assert tuned["locator_timing"] == result["locator_timing"]
    assert tuned["locator_timing"]["weight"] == 0.5 and tuned["locator_timing"]["locator"] == locator
    assert list(tuned["locator_timing"]["validation_f1_by_weight"]) == ["0.5"]

    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    alone = VideoDetector(workdir=original).analyse(video)["scores"]
    loc_alone = VideoDetector(workdir=locator).analyse(video)["scores"]
    assert np.nanmax(np.abs(alone - loc_alone)) > 1e-3  # the two models differ
    blended = VideoDetector(workdir=workdir).analyse(video)["scores"]
    np.testing.assert_allclose(blended, 0.5 * alone + 0.5 * loc_alone, rtol=1e-6, atol=1e-6)

    with pytest.raises(ValueError, match="tuned on the timing blended with the locator"):
        export(workdir, "bundle", str(tmp_path / "b0"))
    with pytest.raises(ValueError, match=f"not {original}"):
        export(workdir, "bundle", str(tmp_path / "b1"), locator=original)
    export(workdir, "bundle", str(tmp_path / "b2"), locator=locator)
    # A detector.json naming the same locator by a relative path (written by hand) is the same locator.
    run_tuned = os.path.join(workdir, "detector.json")
    relative = {**tuned, "locator_timing": {**tuned["locator_timing"], "locator": os.path.relpath(locator)}}
    json.dump(relative, open(run_tuned, "w"))
    export(workdir, "bundle", str(tmp_path / "b3"), locator=os.path.relpath(locator))
    json.dump(tuned, open(run_tuned, "w"))
    # The bundle's blend names its own locator/, not the run it was tuned with.
    assert json.load(open(tmp_path / "b2" / "detector.json"))["locator_timing"]["locator"] == "locator"
    from_bundle = VideoDetector(workdir=str(tmp_path / "b2")).analyse(video)["scores"]
    np.testing.assert_allclose(from_bundle, blended, rtol=1e-6, atol=1e-6)
    # A picking tuned on mirrored windows too (eval.hflip_tta, inference.py): detect mirrors both models' passes.
    tuned_path = tmp_path / "b2" / "detector.json"
    json.dump({**json.load(open(tuned_path)), "hflip_tta": True}, open(tuned_path, "w"))
    mirrored = VideoDetector(workdir=str(tmp_path / "b2"))
    assert mirrored.detector.hflip_tta and mirrored.detector.locator.hflip_tta
    assert mirrored.detector.describe()["hflip_tta"] is True
    assert np.nanmax(np.abs(mirrored.analyse(video)["scores"] - blended)) > 1e-4

    shutil.move(locator, str(tmp_path / "moved"))
    with pytest.raises(FileNotFoundError, match="which is not there"):
        VideoDetector(workdir=workdir)


def test_locator_weight_is_chosen_on_the_tuning_split():
    from ml_collections import ConfigDict

    from ta2net_jax.evaluation.evaluate import _tune_locator_weight

    cfg = ConfigDict(
        dict(
            tolerance=3,
            min_separation=2,
            min_separation_s=None,
            prominence_windows_s=(0.0,),
            locator_timing_weights=(0.0, 0.5, 1.0),
        )
    )
    rng = np.random.default_rng(0)
    gt = [np.array([10, 30, 50]), np.array([20, 40])]
    perfect = []
    for events in gt:
        s = np.full(64, 0.1)
        s[events] = 0.9
        perfect.append(s)
    noise = [rng.uniform(0, 1, 64) for _ in gt]
    for n in noise:  # spikes away from the events that outweigh them even at half weight
        n[[3, 25, 60]] = 2.0
    tune = [{"scores": n, "event_frames": e, "fps": 30.0} for n, e in zip(noise, gt)]
    weight, by_weight = _tune_locator_weight(tune, perfect, cfg)
    assert weight == 1.0 and by_weight[1.0] == 1.0 and by_weight[0.0] < 1.0
    # A locator that adds nothing: every weight ties, the smallest wins (the model alone).
    tune = [{"scores": p, "event_frames": e, "fps": 30.0} for p, e in zip(perfect, gt)]
    assert _tune_locator_weight(tune, perfect, cfg)[0] == 0.0


def test_packaged_default_model_is_what_detect_uses(tmp_path):
    """The shipped bundle exists, is small, and `ta2net detect VIDEO` with no flag runs it."""
    from ta2net_jax.cli import main as cli
    from ta2net_jax.export import bundle

    folder = bundle.packaged_model_dir()
    assert folder is not None, f"no packaged default model in {bundle.PACKAGED_MODEL_DIR}"
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)
    assert size <= 20 * 2**20
    tuned = json.load(open(os.path.join(folder, "detector.json")))
    assert "model_picking" in tuned and tuned.get("map_polarity") == "peak"
    # The locator (the /8 stage) gives the maps: same input, a finer map, its own centroid settings.
    locator = bundle.locator_dir(folder)
    assert locator is not None and "attended_centroid" in json.load(open(os.path.join(locator, "detector.json")))
    assert tuple(json.load(open(os.path.join(locator, "config.json")))["model"]["trunk"]["strides"]) == (1, 2, 1)
    out = tmp_path / "e.json"
    assert cli.main(["detect", realdata("greatest_hits_condfoleygen", "hitting_metal.mp4"), "--out", str(out)]) == 0
    result = json.load(open(out))
    assert result["method"] == "model" and result["workdir"] == folder
    assert result["picking"] == tuned["model_picking"]
    assert result["locator"]["workdir"] == locator


def test_event_sheet_marks_true_hits_first(tmp_path):
    from input_pipeline.video import write_video
    from ta2net_jax.evaluation.event_sheet import event_panels, save_event_sheet

    frames = np.zeros((20, 24, 32, 3), np.uint8)
    video = str(tmp_path / "clip.mp4")
    write_video(video, frames, 10.0)
    events = [
        {"frame": 3, "x": 5.0, "y": 6.0, "score": 0.9},  # no GT near
        {"frame": 10, "x": 20.0, "y": 12.0, "score": 0.6},  # GT at 11
        {"frame": 16, "x": 1.0, "y": 1.0, "score": 0.7},  # GT at 18
    ]
    panels = event_panels(video, events, [11, 18], per_clip=2)
    assert [p["title"].split()[1] for p in panels] == ["f10", "f16"]  # both true hits, in frame order
    assert panels[0]["xy"] == (20.0, 12.0) and panels[0]["image"].shape == (24, 32, 3)
    assert event_panels(video, [], [11]) == []
    path = save_event_sheet(str(tmp_path / "sheet.png"), panels)
    assert open(path, "rb").read(4) == b"\x89PNG"
    with pytest.raises(ValueError, match="no events"):
        save_event_sheet(str(tmp_path / "empty.png"), [])
