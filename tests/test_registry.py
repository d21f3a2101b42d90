"""The dataset and detector registries: adding a dataset is one module and one `register` call (a toy
dataset is registered, built, read by the training pipeline and trained on); adding a detector is one class
(a toy detector runs through `ta2net detect`); `detect --workdir` takes a run's input from the run's own
dataset."""

import json
import os

import numpy as np
import pytest
from conftest import REPO, realdata

from input_pipeline import pipeline, registry
from ta2net_jax.cli import main as cli
from ta2net_jax.config_utils import load_config, save_config
from ta2net_jax.detection import detectors


@pytest.fixture
def toy_dataset():
    registry.register("toy_flashes", "toy_dataset", "tests: noise videos with flashes at known frames")
    yield "toy_flashes"
    registry._DATASETS.pop("toy_flashes")


def test_known_names_and_errors():
    assert {"synthetic_collisions", "audible623", "ucf101_audible", "kinetics_audible", "repcount", "ucfrep"} <= set(
        registry.names()
    )
    assert {"model", "inflection"} <= set(detectors.names())
    with pytest.raises(registry.UnknownDatasetError, match="unknown dataset 'nope'.*synthetic_collisions"):
        registry.get("nope")
    with pytest.raises(detectors.UnknownDetectorError, match="unknown detector 'nope'"):
        detectors.get("nope")


def test_a_registered_toy_dataset_builds_feeds_the_pipeline_and_trains(toy_dataset, smoke_config, tmp_path):
    from ta2net_jax.train import train_and_evaluate

    config = smoke_config
    config.data.name, config.data.builder_config = toy_dataset, "tiny"
    config.data.data_dir = str(tmp_path / "tfds")
    config.train.num_steps = 1
    with pytest.raises(registry.DatasetNotBuiltError, match="ta2net build"):
        registry.get_builder(config.data)
    builder = registry.get_builder(config.data, build_if_missing=True)
    assert builder.info.splits["train"].num_examples == 4
    assert registry.input_spec(config.data) == registry.InputSpec(32, "dis")
    batch = next(iter(pipeline.train_dataset(config, pipeline.data_source(config.data, "train"))))
    assert batch["frames"].shape == (config.train.batch_size, 8, 32, 32, 3) and batch["labels"].any()
    last = train_and_evaluate(config, str(tmp_path / "run"), progress=False)
    assert last["step"] == 1 and np.isfinite(last["loss"])


@detectors.register
class _FrameDifference(detectors.Detector):
    """Toy: mean absolute difference to the previous frame, robust z-scored; the map is that difference."""

    name = "toy_frame_difference"
    default_threshold = 3.0
    score_label = "frame difference (robust z)"

    def scores(self, frames, flow_fwd, flow_bwd, fps):
        diff = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(-1)
        maps = np.concatenate([diff[:1], diff])
        energy = maps.mean((1, 2))
        z = (energy - np.median(energy)) / (1.4826 * np.median(np.abs(energy - np.median(energy))) + 1e-6)
        return detectors.Scores(z, maps)


def test_a_registered_toy_detector_runs_through_ta2net_detect(tmp_path):
    from input_pipeline.video import write_video

    frames = np.full((30, 32, 48, 3), 60, np.uint8)
    frames[10, 8:16, 30:40] = 250  # two flashes in the right half
    frames[20, 8:16, 30:40] = 250
    video = str(tmp_path / "flashes.mp4")
    write_video(video, frames, 25.0)
    out = tmp_path / "events.json"
    assert cli.main(["detect", video, "--method", "toy_frame_difference", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["method"] == "toy_frame_difference" and result["threshold"] == 3.0
    assert [e["frame"] // 10 for e in result["events"]] == [1, 2]  # at the flash or the frame after it
    assert all(e["x"] > 24 for e in result["events"])  # located in the right half


def test_detect_takes_size_and_flow_from_the_runs_own_dataset(tmp_path):
    # A run trained on a real-data config: its dataset (audible623, tiny 32×32, Farneback flow) decides.
    run = tmp_path / "run"
    run.mkdir()
    config = load_config(os.path.join(REPO, "configs", "audible623_data.py:smoke"), ["data.flow_method=farneback"])
    save_config(config, str(run / "config.json"))
    video = realdata("greatest_hits_condfoleygen", "hitting_metal.mp4")
    out = tmp_path / "events.json"
    assert cli.main(["detect", video, "--workdir", str(run), "--method", "inflection", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model_input_size"] == 32 and result["flow"] == "farneback"
    assert registry.input_spec(config.data) == registry.InputSpec(32, "farneback")


def test_a_dataset_built_in_an_older_format_is_named_in_the_error(smoke_config, tmp_path):
    """A folder of an older dataset version (e.g. synthetic_collisions 1.0.0, before the flow side file) is
    not read: the error says it is there and that the format changed."""
    config = smoke_config
    config.data.data_dir = str(tmp_path / "tfds")
    os.makedirs(tmp_path / "tfds" / "synthetic_collisions" / "tiny" / "2.0.0.incomplete5F3A")  # an interrupted build
    with pytest.raises(registry.DatasetNotBuiltError, match="dataset not built; run `ta2net build"):
        registry.get_builder(config.data)
    os.makedirs(tmp_path / "tfds" / "synthetic_collisions" / "tiny" / "1.0.0")
    with pytest.raises(registry.DatasetNotBuiltError, match=r"found version 1\.0\.0, .*format changed.*ta2net build"):
        registry.get_builder(config.data)
