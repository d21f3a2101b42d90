"""Corrupt checkpoints (issue 13): the trainer moves a step that cannot be restored to
`<workdir>/checkpoints_corrupt/<step>-<UTC time>/`, resumes from the newest good one and finishes with a
state bit-identical to an uninterrupted run (or says that it restarts at step 0); the inference commands
skip to the previous step without moving anything, and fail with one line when no step restores.

The reference is the session's uninterrupted 4-step run (tests/reference_run.py; checkpoints at steps 2 and 4).
"""

import glob
import logging
import os
import shutil
import subprocess

import pytest
from conftest import assert_bit_identical
from reference_run import NUM_STEPS, read_log, state_at, subprocess_env, train_command

from ta2net_jax import checkpoint, restore_noise
from ta2net_jax.cli import main as cli
from ta2net_jax.train import train_and_evaluate


def _truncate_data_files(step_dir):
    files = [p for p in glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True) if os.path.isfile(p)]
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.truncate(10)


def _remove(*parts):
    def corrupt(step_dir):
        os.remove(os.path.join(step_dir, *parts))

    return corrupt


def _remove_manifests(step_dir):
    manifests = glob.glob(os.path.join(step_dir, "state", "**", "manifest.ocdbt"), recursive=True)
    assert manifests
    for path in manifests:
        os.remove(path)


def _empty(step_dir):
    shutil.rmtree(step_dir)
    os.makedirs(step_dir)


CORRUPTIONS = {
    "truncated_data_files": _truncate_data_files,
    "missing_metadata": _remove("state", "_METADATA"),
    "missing_manifest": _remove_manifests,
    "empty_step_folder": _empty,
}


def _copy(reference, tmp_path, name="run"):
    workdir = str(tmp_path / name)
    shutil.copytree(reference["workdir"], workdir)
    return workdir


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_newest_step_inference_skips_it_and_training_finishes_bit_identically(
    corruption, reference, tmp_path, caplog
):
    workdir = _copy(reference, tmp_path)
    CORRUPTIONS[corruption](os.path.join(workdir, "checkpoints", "4"))
    config = reference["config"]

    # Inference (eval, detect, export, eval-videos) picks the previous step and moves nothing.
    with caplog.at_level(logging.WARNING):
        _, step = checkpoint.load_model_for_inference(config, workdir)
    assert step == 2
    assert "using checkpoint step 2" in caplog.text
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
    assert not os.path.exists(checkpoint.corrupt_directory(workdir))

    # The same training command, rerun: step 4 is moved aside, the run resumes at 2 and saves 4 again.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        last = train_and_evaluate(config, workdir, progress=False)
    assert last["step"] == NUM_STEPS
    moved = os.listdir(checkpoint.corrupt_directory(workdir))
    assert len(moved) == 1 and moved[0].startswith("4-"), moved
    lines = [r.getMessage() for r in caplog.records if "moved to" in r.getMessage()]
    assert len(lines) == 1 and "checkpoint step 4" in lines[0] and moved[0] in lines[0], lines
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
    assert_bit_identical(state_at(workdir, config, NUM_STEPS), reference["final"])
    # And the next rerun has nothing left to do.
    assert train_and_evaluate(config, workdir, progress=False).get("already_complete")


def test_every_step_corrupt_inference_fails_in_one_line(reference, tmp_path, capsys):
    workdir = _copy(reference, tmp_path)
    for step in ("2", "4"):
        _truncate_data_files(os.path.join(workdir, "checkpoints", step))
    out = str(tmp_path / "model.safetensors")
    status = cli.main(["export", "--workdir", workdir, "--format", "safetensors", "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith("ta2net: error: ") and "no restorable checkpoint" in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not os.path.exists(out)
    # An explicit step that does not restore: one line naming it.
    status = cli.main(["export", "--workdir", workdir, "--step", "4", "--format", "safetensors", "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and "checkpoint step 4 cannot be restored" in err[-1], err
    assert not os.path.exists(out)


def test_every_step_corrupt_training_says_it_restarts_and_finishes(reference, tiny_data_dir, tmp_path):
    """The CLI in a subprocess (no traceback may escape): every step corrupt → both moved aside, a loud
    restart at step 0, and the run finishes bit-identically to the uninterrupted one."""
    workdir = _copy(reference, tmp_path)
    for step in ("2", "4"):
        _truncate_data_files(os.path.join(workdir, "checkpoints", step))
    proc = subprocess.run(
        train_command(tiny_data_dir, workdir), env=subprocess_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Event loop is closed" not in proc.stderr
    assert "training restarts at step 0" in proc.stderr
    assert sorted(m.split("-")[0] for m in os.listdir(checkpoint.corrupt_directory(workdir))) == ["2", "4"]
    assert "trained to step 4" in proc.stdout
    assert [r["step"] for r in read_log(workdir)] == list(range(1, NUM_STEPS + 1))
    assert_bit_identical(state_at(workdir, reference["config"], NUM_STEPS), reference["final"])


def test_export_uses_the_previous_step_when_the_newest_is_corrupt(reference, tmp_path, capsys):
    workdir = _copy(reference, tmp_path)
    _truncate_data_files(os.path.join(workdir, "checkpoints", "4"))
    out = str(tmp_path / "model.safetensors")
    status = cli.main(["export", "--workdir", workdir, "--format", "safetensors", "--out", out])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "step 2" in printed.out and os.path.exists(out)
    assert "Traceback" not in printed.err
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]  # read-only: nothing moved


def _orphaned_failing_task(filename):
    """Runs a task whose coroutine (compiled as if it lived in `filename`) fails, never awaits its result,
    and collects it: asyncio then logs "Task exception was never retrieved" with the traceback."""
    import asyncio
    import gc

    namespace = {}
    exec(compile("async def read():\n    raise ValueError('truncated chunk')\n", filename, "exec"), namespace)

    async def main():
        asyncio.get_running_loop().create_task(namespace["read"]())
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    gc.collect()


def test_orphaned_orbax_read_failures_are_not_logged_but_other_task_failures_are(caplog):
    """The flaky-traceback case of the corrupt-step restore: orbax's sibling read tasks fail after the restore
    gave up; their "never retrieved" log (with a traceback) is dropped. A task of any other code still logs."""
    restore_noise.quiet_failed_restores()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _orphaned_failing_task("/site-packages/orbax/checkpoint/_src/serialization/serialization.py")
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
        _orphaned_failing_task("/home/user/my_code.py")
        assert [r for r in caplog.records if "never retrieved" in r.getMessage()]


def _orphaned_failing_future(message):
    """A future (as tensorstore's reads are, with no Python traceback) that fails and is collected unread."""
    import asyncio
    import gc

    async def main():
        asyncio.get_running_loop().create_future().set_exception(ValueError(message))
        await asyncio.sleep(0)

    asyncio.run(main())
    gc.collect()


def test_orphaned_reads_of_a_failed_step_are_not_logged_but_other_futures_are(caplog):
    """tensorstore's late read futures of a step whose restore failed name a file in that step: dropped. The
    same error in another step (4 vs 40) or outside checkpoints still logs."""
    restore_noise.quiet_failed_restores()
    restore_noise.remember_unusable("/data/run/checkpoints/4")
    read_error = 'OUT_OF_RANGE: Error reading "w/.zarray" in OCDBT database at local file "{}/state/d/ab12"'

    def logged():
        return [r for r in caplog.records if "never retrieved" in r.getMessage()]

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _orphaned_failing_future(read_error.format("/data/run/checkpoints/4"))
        assert not logged()
        _orphaned_failing_future(read_error.format("/data/run/checkpoints/40"))
        assert len(logged()) == 1
        _orphaned_failing_future("my own future failed")
        assert len(logged()) == 2
