"""Ctrl-C as a user gives it: one line, exit status 130, no traceback, nothing half-written, and the work
in flight stopped rather than waited for (flow threads: tests/test_flow.py; worker processes: here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, realdata

from input_pipeline import worker_pool
from ta2net_jax.cli import main as cli


def start_ta2net(*args: str) -> subprocess.Popen:
    """`ta2net ARGS` in a session of its own (its process group is what a terminal's Ctrl-C reaches), with
    SIGINT at its default: a job started in the background of a non-interactive shell (a CI runner) ignores
    SIGINT, its children inherit that, and Python then never raises KeyboardInterrupt. (An exec wrapper, not
    Popen's preexec_fn, which forks a process that runs JAX's threads.)"""
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    command = [sys.executable, "-c", reset, sys.executable, "-m", "ta2net_jax.cli", *args]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def ctrl_c(proc: subprocess.Popen, what: str) -> str:
    """SIGINT to the process group, as a terminal sends it; the stderr of a process that then ends."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"{what} went on for a minute after Ctrl-C")


def test_keyboard_interrupt_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args, overrides):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "info", interrupted)
    try:
        status = cli.main(["info", "--config", "configs/synthetic_small.py"])
    except KeyboardInterrupt:  # escaping here would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped ta2net's main()")
    assert status == 130
    assert capsys.readouterr().err == "ta2net: interrupted\n"


def test_ctrl_c_stops_detect_at_once_and_writes_nothing(tmp_path):
    """SIGINT to the whole job (as a terminal sends it) during a long OpenCV TV-L1 flow (≈ 45 s of work)."""
    out = tmp_path / "events.json"
    clip = realdata("ucf101_audible623", "v_SoccerJuggling_g23_c01.avi")
    proc = start_ta2net("detect", clip, "--method", "inflection", "--flow", "tvl1", "--out", str(out))
    time.sleep(8)  # imports, decoding, then inside the flow
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    err = ctrl_c(proc, "detect")
    assert proc.returncode == 130, err[-2000:]
    assert err.splitlines()[-1] == "ta2net: interrupted" and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def _sleep_then_mark(job):
    seconds, marker = job
    time.sleep(seconds)
    open(marker, "w").close()
    return marker


def test_leaving_the_worker_map_by_an_error_stops_the_workers(tmp_path):
    """Without termination the pool's shutdown would wait for the 20 s task to finish and write its marker."""
    quick, slow = str(tmp_path / "quick"), str(tmp_path / "slow")
    with pytest.raises(RuntimeError, match="stop"):
        with worker_pool.ordered_map(2) as run:
            results = run(_sleep_then_mark, [(0, quick), (20, slow)])
            assert next(results) == quick  # the slow job is running in the other worker by now
            raise RuntimeError("stop")
    time.sleep(1)
    assert not os.path.exists(slow)


def test_ctrl_c_stops_training_with_a_checkpoint(tiny_data_dir, tmp_path):
    """Training with two grain worker processes, SIGINT to the whole job once steps are logged: a checkpoint at
    the next step and status 130 (distributed.PreemptionWatcher), not grain's "worker process was terminated
    unexpectedly" (pipeline.leave_ctrl_c_to_the_trainer) nor a KeyboardInterrupt inside orbax's save."""
    workdir = tmp_path / "run"
    proc = start_ta2net(
        *("train", "--config", "configs/synthetic_small.py:smoke", "--workdir", str(workdir)),
        *(f"--config.data.data_dir={tiny_data_dir}", "--config.data.num_frames=8", "--config.data.worker_count=2"),
        *("--config.train.num_steps=100000", "--config.train.log_every=1"),
    )
    log = workdir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (log.exists() and log.read_text().count("\n") >= 2):  # two steps done: the workers are feeding
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no training steps logged (status {proc.poll()}): {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    err = ctrl_c(proc, "training")
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted (Ctrl-C): checkpoint at step" in err and "Traceback" not in err, err[-3000:]
    from ta2net_jax import checkpoint

    mngr = checkpoint.manager(str(workdir), for_training=False)
    steps = checkpoint.complete_steps(mngr)
    mngr.close()
    assert steps and max(steps) >= 2, steps
