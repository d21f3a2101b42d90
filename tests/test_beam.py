"""`--runner beam` (input_pipeline/beam_runner.py) against the local process pool: the same per-video outputs
byte for byte, the same failures named, on real clips and on the tiny synthetic build.

Beam runs in its own environment (.venv-beam, `make beam-env`; `make test` creates it first): the pipeline is
Beam's DirectRunner with 2 workers in multi_processing mode (the mode closest to a distributed runner: the
workers are separate processes that import the work function and share nothing with the driver). Without
.venv-beam the Beam tests skip with that reason; the missing-environment error is checked either way.
The local side runs with one worker: a process pool forked from pytest (JAX's threads already running) risks
deadlocks, and the serial map calls the same per-video function the pool does.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, realdata

from input_pipeline import beam_runner, prepare as prepare_lib, video_files

BEAM_OPTIONS = ("--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing")
BEAM = prepare_lib.Runner("beam", BEAM_OPTIONS)

needs_beam = pytest.mark.skipif(
    not os.path.exists(beam_runner.beam_python()) and not beam_runner.beam_importable(),
    reason="the Apache Beam env .venv-beam is absent: `make beam-env` creates it (Beam pins numpy<2.5, "
    "protobuf<7, pyarrow<26, so it has its own environment; docs/scaling.md §6)",
)


def _tree(root: str) -> dict[str, bytes]:
    """{relative path: bytes} of every file under root; meta.json without `seconds` (the wall time of the
    video's preparation, which differs between any two runs, two local ones included)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            if name == "meta.json":
                meta = json.loads(data)
                assert meta.pop("seconds") >= 0
                data = json.dumps(meta, sort_keys=True).encode()
            out[os.path.relpath(path, root)] = data
    return out


def _assert_same_tree(a: str, b: str) -> None:
    tree_a, tree_b = _tree(a), _tree(b)
    assert sorted(tree_a) == sorted(tree_b)
    different = [name for name in tree_a if tree_a[name] != tree_b[name]]
    assert not different, f"differ between the runners: {different}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[str, str]]:
    """Two short real clips and a truncated copy of one (the first 4 kB: a header and no decodable frames)."""
    folder = tmp_path_factory.mktemp("clips")
    metal = realdata("greatest_hits_condfoleygen", "hitting_metal.mp4")
    situp = realdata("repcount_ucfrep", "test2021.mp4")
    with open(situp, "rb") as f:
        (folder / "broken.mp4").write_bytes(f.read(4096))
    return video_files.keyed_videos([metal, situp, str(folder / "broken.mp4")])


OPTIONS = prepare_lib.PrepareOptions(size=32, max_frames=40)  # small: the runners, not the resolution, are tested


@needs_beam
def test_prepare_with_beam_matches_the_local_pool_byte_for_byte(clips, tmp_path):
    local = prepare_lib.prepare_all(clips, str(tmp_path / "local"), OPTIONS, workers=1, progress=False)
    beam = prepare_lib.prepare_all(clips, str(tmp_path / "beam"), OPTIONS, runner=BEAM, progress=False)
    assert sorted(local.prepared) == sorted(beam.prepared) == ["hitting_metal", "test2021"]
    assert local.frames == beam.frames == 80
    # The broken file is named, with the same message, by both runners.
    assert list(local.failed) == list(beam.failed) == ["broken"]
    assert local.failed["broken"] == beam.failed["broken"]
    assert local.failed["broken"].startswith(dict(clips)["broken"] + ":")
    _assert_same_tree(str(tmp_path / "local"), str(tmp_path / "beam"))
    # Idempotent: a second Beam run finds every good video done and redoes none.
    again = prepare_lib.prepare_all(clips, str(tmp_path / "beam"), OPTIONS, runner=BEAM, progress=False)
    assert sorted(again.reused) == ["hitting_metal", "test2021"] and again.prepared == []
    assert list(again.failed) == ["broken"]


def _tiny_raw_with_a_garbage_video(raw: str) -> str:
    """The tiny config's raw folder with train_00001 replaced by garbage bytes (its events file present, so
    the renderer keeps it): both runners must skip and name it."""
    bad = os.path.join(raw, "tiny", "train", "train_00001")
    os.makedirs(os.path.dirname(bad))
    with open(bad + ".mp4", "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42 not a video" * 8)
    with open(bad + ".json", "w") as f:
        json.dump({"seed": 1, "fps": 25.0, "events": [], "metadata": {}}, f)
    return bad + ".mp4"


@needs_beam
def test_build_with_beam_matches_the_local_pool_byte_for_byte(tmp_path):
    from input_pipeline.datasets import synthetic_collisions

    built = {}
    for name, runner in (("local", None), ("beam", BEAM)):
        raw = str(tmp_path / name / "raw")
        bad = _tiny_raw_with_a_garbage_video(raw)
        builder = synthetic_collisions.build_dataset(
            str(tmp_path / name / "tfds"), "tiny", workers=1, raw_dir=raw, runner=runner
        )
        with open(os.path.join(builder.data_dir, "build_report.json")) as f:
            skipped = json.load(f)["skipped"]
        assert len(skipped["train"]) == 1 and skipped["train"][0].startswith(bad + ":"), skipped
        assert skipped["validation"] == skipped["test"] == []
        built[name] = builder
    # The rendered videos, their exact flow and events: the same bytes.
    _assert_same_tree(str(tmp_path / "local" / "raw"), str(tmp_path / "beam" / "raw"))
    # The records, the flow side files and the feature spec: the same bytes (dataset_info.json holds the folder
    # it was built in).
    for name in sorted(os.listdir(built["local"].data_dir)):
        if name.endswith((".array_record", "features.json", ".f16")) or "array_record-" in name:
            a = open(os.path.join(built["local"].data_dir, name), "rb").read()
            b = open(os.path.join(built["beam"].data_dir, name), "rb").read()
            assert a == b, name
    assert {k: v.num_examples for k, v in built["local"].info.splits.items()} == {
        k: v.num_examples for k, v in built["beam"].info.splits.items()
    }
    assert not any(".examples-" in folder for folder, _, _ in os.walk(tmp_path / "beam" / "raw"))


def test_beam_without_its_environment_names_make_beam_env(tmp_path):
    """The CLI's one-line error when neither this interpreter nor .venv-beam has Beam."""
    if beam_runner.beam_importable():
        pytest.skip("this interpreter has apache_beam: the pipeline runs here, nothing is missing")
    video = shutil.copy(realdata("repcount_ucfrep", "test2021.mp4"), tmp_path / "v.mp4")
    env = dict(os.environ, **{beam_runner.PYTHON_ENV: str(tmp_path / "no-such-python")})
    proc = subprocess.run(
        [sys.executable, "-m", "ta2net_jax.cli", "prepare", str(video), "--out", str(tmp_path / "out")]
        + ["--runner", "beam", "--size", "32", "--max-frames", "8"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "make beam-env" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
