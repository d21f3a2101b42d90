"""Multi-process (multi-host) set-up: `jax.distributed.initialize`, cross-process helpers, preemption.

Every process runs the same program; `initialize` must run before anything touches a device.

The command line's flags (ta2net_jax/cli/main.py) map one to one onto `initialize`'s arguments:

* `--distributed=auto` (default): initialize when explicit flags are given (`--coordinator HOST:PORT
  --num-processes N --process-id I`), when `JAX_COORDINATOR_ADDRESS` is set, under a SLURM step with more
  than one task, or on a Cloud TPU VM (libtpu installed and /dev/accel* or /dev/vfio present); otherwise run
  as one process. `on`: always call `jax.distributed.initialize` (with the flags given, the rest auto-detected
  by JAX: Cloud TPU metadata, SLURM, Open MPI, Kubernetes). `off`: never.
* `--local-device-ids`: "auto" (default) passes nothing, except under SLURM when the task sees exactly one
  GPU (`--gpus-per-task=1` sets CUDA_VISIBLE_DEVICES to one device), where it passes [0]: JAX's SLURM
  default, [SLURM_LOCALID], assumes every task sees all of the node's GPUs. Or a list: "0,1".
* On CPU the processes talk over Gloo (no flags); `JAX_NUM_CPU_DEVICES` sets each one's fake devices.

Preemption (`PreemptionWatcher`): one process alone uses a Python SIGTERM handler; after
`jax.distributed.initialize` JAX's preemption service owns SIGTERM (any process notified → all agree on
one step, `multihost_utils.reached_preemption_sync_point`), so every process saves at the same step.
One process alone also takes a first Ctrl-C (SIGINT) as a stop with a checkpoint at the next step; a second
one stops at once (KeyboardInterrupt), as does every Ctrl-C of a multi-process run.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import signal
import sys

import numpy as np

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")


def _slurm_tasks() -> int:
    try:
        return int(os.environ.get("SLURM_STEP_NUM_TASKS") or os.environ.get("SLURM_NTASKS") or 0)
    except ValueError:
        return 0


def _on_cloud_tpu_vm() -> bool:
    has_device = os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio")
    return has_device and importlib.util.find_spec("libtpu") is not None


def detect(coordinator: str | None = None) -> str | None:
    """Why this process should join a multi-process job ('flags', 'env', 'slurm', 'tpu'), or None."""
    if coordinator:
        return "flags"
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return "env"
    if "SLURM_JOB_ID" in os.environ and "SLURM_STEP_NODELIST" in os.environ and _slurm_tasks() > 1:
        return "slurm"
    if _on_cloud_tpu_vm():
        return "tpu"
    return None


def _visible_gpus() -> int | None:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None or value.strip() in ("", "all"):
        return None
    return len([v for v in value.split(",") if v.strip()])


def parse_local_device_ids(spec, reason: str | None) -> list[int] | None:
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "auto", "none")):
        if reason == "slurm" and _visible_gpus() == 1:
            return [0]
        return None
    if isinstance(spec, str):
        return [int(x) for x in spec.split(",") if x.strip()]
    return [int(x) for x in spec]


def initialize(
    mode: str = "auto",
    *,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids=None,
) -> dict:
    """Joins the multi-process job when asked (see the module docstring). Returns what was done:
    {'initialized', 'reason', 'process_index', 'process_count'} (the last two after initialization)."""
    import jax

    if mode not in MODES:
        raise ValueError(f"--distributed {mode!r} is not one of {MODES}")
    explicit = [coordinator, num_processes, process_id]
    if any(v is not None for v in explicit) and not all(v is not None for v in explicit) and mode != "on":
        raise ValueError(
            "--coordinator, --num-processes and --process-id go together (or use "
            "--distributed=on to let JAX detect the missing ones)"
        )
    reason = None if mode == "off" else detect(coordinator)
    if mode == "on" and reason is None:
        reason = "on"
    if reason is None:
        return {"initialized": False, "reason": None}
    if jax.distributed.is_initialized():
        return {
            "initialized": True,
            "reason": "already",
            "process_index": jax.process_index(),
            "process_count": jax.process_count(),
        }
    kwargs = {}
    if coordinator is not None:
        kwargs["coordinator_address"] = coordinator
    if num_processes is not None:
        kwargs["num_processes"] = num_processes
    if process_id is not None:
        kwargs["process_id"] = process_id
    ids = parse_local_device_ids(local_device_ids, reason)
    if ids is not None:
        kwargs["local_device_ids"] = ids
    log.info("jax.distributed.initialize(%s) [%s]", kwargs, reason)
    jax.distributed.initialize(**kwargs)
    return {
        "initialized": True,
        "reason": reason,
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
    }


def is_distributed() -> bool:
    import jax

    return jax.distributed.is_initialized()


def is_main() -> bool:
    """Whether this process does the side effects (logs, files): process 0."""
    import jax

    return jax.process_index() == 0


def allgather_objects(obj) -> list:
    """[obj of process 0, obj of process 1, …] on every process (pickled, padded, all-gathered).
    A collective: every process must call it."""
    import jax

    if jax.process_count() == 1:
        return [obj]
    from jax.experimental import multihost_utils

    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.asarray([data.size], np.int64))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: data.size] = data
    gathered = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(sizes), -1)
    return [pickle.loads(gathered[i, : int(n)].tobytes()) for i, n in enumerate(sizes)]


_barriers = 0


def barrier(name: str, timeout_s: int = 3600) -> None:
    """All processes reach this point (no-op for one process). Uses the coordination service (orbax's
    `sync_global_processes`), not a device collective: a process may arrive long after the others (e.g.
    still compiling) without tripping the collectives' connection timeouts (Gloo: 30 s)."""
    global _barriers
    import jax

    if jax.process_count() > 1:
        from orbax.checkpoint import multihost

        _barriers += 1
        multihost.sync_global_processes(f"ta2net:{name}:{_barriers}", timeout=timeout_s)


class PreemptionWatcher:
    """`reached(step)` turns True, on every process at the same step, after a SIGTERM (preemption notice).

    One process: Python handlers of SIGTERM and SIGINT set a flag (the previous handlers are restored by
    `close`); `interrupted` says the flag came from Ctrl-C, whose second press raises KeyboardInterrupt.
    Several (jax.distributed initialized): JAX's preemption service catches SIGTERM on any process and
    the processes agree on a sync step; `reached` must then be called at every step by every process.
    """

    def __init__(self):
        self._flag = False
        self.interrupted = False
        self._previous = {}
        self.multiprocess = is_distributed()
        if not self.multiprocess:
            for signum in (signal.SIGTERM, signal.SIGINT):
                try:
                    self._previous[signum] = signal.signal(signum, self._handler)
                except ValueError:  # not the main thread: no handler, the signal keeps its default action
                    pass

    def _handler(self, signum, frame):
        if signum == signal.SIGINT:
            if self.interrupted:
                raise KeyboardInterrupt  # the second Ctrl-C: stop now (the CLI says "interrupted")
            self.interrupted = True
            print(
                "\nta2net: Ctrl-C: stopping with a checkpoint at the next step (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
        self._flag = True

    def reached(self, step: int) -> bool:
        if self.multiprocess:
            from jax.experimental import multihost_utils

            return bool(multihost_utils.reached_preemption_sync_point(step))
        return self._flag

    def close(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
