"""Progress bars for the long stages inside one video: decoding, optical flow, model windows, overlay frames.

A ten-minute video takes minutes per stage on a CPU, and a per-video bar (`detect` on a folder) sits at 0 %
all that time. These bars say which stage is running and how far it is. They are off unless the caller
turns them on (`shown()`: the `ta2net` command line does, library calls and tests do not), and even then a
bar is drawn only once its stage has run for `DELAY_S` seconds and is erased when it ends, so short clips
print nothing new and a log keeps only the outer bars.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

DELAY_S = 2.0

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
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=desc,
        unit=unit,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )
