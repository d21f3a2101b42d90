"""Per-video work in worker processes: one ordered map that `prepare` and the synthetic `build` share.

Rendering, decoding and CPU flow run one video per task in ``workers`` processes, each with one OpenCV
thread (the processes are the parallelism). The processes are started with "spawn", not forked: a build or a
prepare whose flow runs on the JAX devices (`tvl1-jax`, input_pipeline/packed_flow.py) has JAX's threads
running in this process, which a fork would copy in an unknown state (and a pool forked after this process
had itself run OpenCV once hung: benchmarks/prepare.py). A spawned worker imports the main module, so a
script that reaches this with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard (the
``ta2net`` command has it). At most :data:`AHEAD_PER_WORKER` results per worker wait for the consumer, so a
long input's decoded videos never pile up in memory. Leaving the map by an exception (Ctrl-C included)
terminates the workers at once instead of waiting for the videos they hold.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

AHEAD_PER_WORKER = 4


def one_opencv_thread() -> None:
    """One OpenCV thread in a worker process (the processes are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)


def start_worker() -> None:
    """A pool worker's initialiser: one OpenCV thread, and Ctrl-C left to the main process (a terminal sends
    it to every process of the job; the main one stops the workers)."""
    import signal

    one_opencv_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def ordered_map(workers: int) -> Iterator[Callable]:
    """A context giving ``run(fn, jobs)``: an iterator of ``fn(job)`` in the order of ``jobs``, computed by
    ``workers`` spawned processes (in this process, by the built-in ``map``, for ``workers`` ≤ 1). ``fn``
    must be a module-level function (it is pickled by name); leaving the context cancels what has not
    started."""
    if workers <= 1:
        yield map
        return
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=start_worker)

    def run(fn, jobs):
        jobs, pending = iter(jobs), collections.deque()
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) >= AHEAD_PER_WORKER * workers:
                break
        while pending:
            result = pending.popleft().result()
            job = next(jobs, pending)  # `pending` as the end marker: no job is ever that object
            if job is not pending:
                pending.append(pool.submit(fn, job))
            yield result

    try:
        yield run
    except BaseException:
        # Ctrl-C or an error: the tasks running (a whole video each) are stopped, not waited for; what they
        # were writing is a partial folder the next run removes (prepare.py).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
