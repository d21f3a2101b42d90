"""Quiet after a failed checkpoint restore: the noise orbax and tensorstore leave behind, and only that.

When one array of a damaged step fails to restore, orbax gives up while tensorstore's other reads are still in
flight; they finish later, into an asyncio loop that is closed by then, or as futures nobody awaits, and each
prints a traceback (over 1,000 for one corrupt step). The restore failure itself is reported in one warning
line by ta2net_jax/checkpoint.py, which installs these filters before its first restore attempt and names the
step folders that failed; any other exception or log record still reaches the previous hooks and handlers.
"""

from __future__ import annotations

import logging
import os
import sys


def _closed_loop(exc) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def quiet_failed_restores() -> None:
    """After a failed restore, tensorstore reads of the other arrays still finish and hand their results to
    the asyncio loop orbax ran the restore in, which is closed by then: each prints "RuntimeError: Event loop
    is closed" with a traceback (over 1,000 for one corrupt step), through sys.unraisablehook or, from
    tensorstore's callback threads, sys.excepthook. Those, and only those, are dropped; anything else still
    reaches the previous hooks. Installed before the first restore attempt: the loop closes, and the first
    callbacks can arrive, before the failure reaches our code."""
    if getattr(sys.unraisablehook, "_ta2net_closed_loop_filter", False):
        return
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def unraisable_hook(unraisable):
        if not _closed_loop(unraisable.exc_value):
            previous_unraisable(unraisable)

    def except_hook(exc_type, exc, tb):
        if not _closed_loop(exc):
            previous_except(exc_type, exc, tb)

    unraisable_hook._ta2net_closed_loop_filter = True
    sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook
    logging.getLogger("asyncio").addFilter(_drop_orphaned_restore_reads)


# Step folders whose restore failed in this process: late read errors that name them are already reported.
_unusable_step_dirs: set[str] = set()


def remember_unusable(step_dir: str) -> None:
    """Marks a checkpoint step folder whose restore failed: late read errors naming a file in it are dropped."""
    _unusable_step_dirs.add(step_dir.replace(os.sep, "/"))


def _drop_orphaned_restore_reads(record: logging.LogRecord) -> bool:
    """asyncio's "Task (or Future) exception was never retrieved" for a read of the failed restore: when one
    array of a damaged step fails, orbax stops waiting, and the sibling reads that fail too are garbage
    collected with their exception, which asyncio logs (at a random later time, so the filter stays
    installed). Two shapes reach the log: orbax's read tasks, whose traceback passes through orbax's checkpoint
    code, and tensorstore's own futures, which carry no Python traceback but whose error names the file it
    could not read, inside a step folder whose restore already failed (`_unusable_step_dirs`). The restore
    failure itself is reported in one warning line; any other record is kept."""
    message = record.getMessage()
    if not record.exc_info or not (
        message.startswith("Task exception was never retrieved")
        or message.startswith("Future exception was never retrieved")
    ):
        return True
    exc, tb = record.exc_info[1], record.exc_info[2]
    while tb is not None:
        if "orbax/checkpoint" in tb.tb_frame.f_code.co_filename.replace(os.sep, "/"):
            return False
        tb = tb.tb_next
    text = str(exc).replace(os.sep, "/")
    return not any(f"{step_dir}/" in text for step_dir in _unusable_step_dirs)
