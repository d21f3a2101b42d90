"""Progress bars for the long stages inside one video: decoding, optical flow, model windows, overlay frames.

A ten-minute video takes minutes per stage on a CPU, and a per-video bar (`detect` on a folder) sits at 0 %
all that time. These bars say which stage is running and how far it is. They are off unless the caller
turns them on (`shown()`: the `ta2net` command line does, library calls and tests do not), and even then a
bar is drawn only once its stage has run for `DELAY_S` seconds and is erased when it ends, so short clips
print nothing new and a log keeps only the outer bars.

Every bar of the project (these and the per-run ones: training steps, videos of a folder, dataset builds) is
made by `tqdm` below. On a terminal (or in a Jupyter notebook) that is tqdm as usual. Into a log (stderr not
a terminal: a SLURM or Cloud TPU job's output file, `nohup`, CI) tqdm would redraw its one line with carriage
returns up to ten times a second, so a day of training leaves a single line of tens of megabytes; there a bar
writes one plain line per update instead, at most every LOG_INTERVAL_S seconds, and always its final state.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import sys
from collections.abc import Iterator

DELAY_S = 2.0
LOG_INTERVAL_S = 30.0

_SHOWN = contextvars.ContextVar("ta2net_progress_shown", default=False)


@contextlib.contextmanager
def shown(enabled: bool = True) -> Iterator[None]:
    """Within this block, `bar()` draws its bars (when `enabled`)."""
    token = _SHOWN.set(bool(enabled))
    try:
        yield
    finally:
        _SHOWN.reset(token)


def is_shown() -> bool:
    return _SHOWN.get()


class _Hidden:
    """What `bar` gives outside `shown()`: the same calls, doing nothing (and no tqdm import, which the Beam
    workers' environment does not have)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Hidden:
        return self

    def __exit__(self, *exc) -> None:
        pass


def bar(total: int | None, desc: str, unit: str = "frame"):
    """A tqdm bar for one stage (a context manager; `.update(n)` after each unit of work), drawn only inside
    `shown()` and after DELAY_S seconds, erased when closed. `total` None: a counter without a percentage."""
    if not _SHOWN.get():
        return _Hidden()
    return tqdm(
        total=total or None,
        desc=desc,
        unit=unit,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )


# What tqdm writes to redraw in place: carriage returns and "cursor up" (stacked bars).
_REDRAW = re.compile(r"\r|\x1b\[A")


class _LogLines:
    """A text stream for tqdm that turns each redraw into a line of its own, without blank ones: the
    clearing writes (spaces) and the newlines that position stacked bars carry no text and are dropped."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        for line in _REDRAW.sub("\n", text).split("\n"):
            if line.strip():
                self._stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        getattr(self._stream, "flush", lambda: None)()

    def __getattr__(self, name):  # encoding, closed, …: the stream's own
        return getattr(self._stream, name)


def is_terminal(stream) -> bool:
    """A stream that redraws a line on a carriage return: a terminal, or a Jupyter cell's output (ipykernel's
    streams say they are no terminal, yet the notebook draws tqdm's redraws in place)."""
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@functools.cache
def _log_bar():
    """tqdm's class, whose forced redraws (`set_postfix`, `refresh`, around `write`) wait for the interval
    too: the train loop sets its loss every few steps. Made on first use: tqdm is imported only then."""
    from tqdm import tqdm as _tqdm

    class LogBar(_tqdm):
        def refresh(self, nolock=False, lock_args=None):
            if self.disable:  # a disabled bar is only half made (no clock)
                return None
            now = self._time()
            if getattr(self, "_printed", False) and now - self.last_print_t < self.mininterval:
                return False
            self._printed = True
            self.last_print_t = now
            return super().refresh(nolock=nolock, lock_args=lock_args)

    return LogBar


def tqdm(*args, **kwargs):
    """`tqdm.tqdm(*args, **kwargs)`, writing to `file` (default stderr) one line per update at most every
    LOG_INTERVAL_S seconds when that is not a terminal (module docstring)."""
    stream = kwargs.get("file") or sys.stderr
    if is_terminal(stream):
        from tqdm import tqdm as _tqdm

        return _tqdm(*args, **kwargs)
    kwargs["file"] = _LogLines(stream)
    kwargs["mininterval"] = kwargs["maxinterval"] = max(kwargs.get("mininterval", 0.0), LOG_INTERVAL_S)
    kwargs["dynamic_ncols"] = False  # no terminal to measure; tqdm's fixed-width bar
    return _log_bar()(*args, **kwargs)


def write(message: str) -> None:
    """Prints a line (to stdout) above the bars in progress, as `tqdm.write` does."""
    from tqdm import tqdm as _tqdm

    _tqdm.write(message)
