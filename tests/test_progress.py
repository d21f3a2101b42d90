"""Progress bars in a log (input_pipeline/progress.py `tqdm`): one plain line per update, at most every
LOG_INTERVAL_S seconds, the final state always; on a terminal, tqdm's own redrawing."""

import io

import pytest
import tqdm.std

from input_pipeline import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """tqdm's clock, moved by hand (seconds); no monitor thread to refresh behind the test's back."""
    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    return now


def _lines(text: str) -> list[str]:
    assert "\r" not in text and "\x1b" not in text, repr(text)
    lines = text.split("\n")
    assert lines[-1] == "", repr(text)  # every line ends
    assert all(line.strip() for line in lines[:-1]), repr(text)  # no blank ones
    return lines[:-1]


def test_a_log_gets_a_line_per_interval_and_the_final_state(clock):
    log = io.StringIO()
    bar = progress.tqdm(total=1000, desc="train", unit="step", file=log)
    for _ in range(1000):
        clock[0] += 0.1  # 100 s in all: three intervals of 30 s
        bar.update(1)
    bar.close()
    lines = _lines(log.getvalue())
    assert lines[0].startswith("train:   0%") and "0/1000" in lines[0]
    assert lines[-1].startswith("train: 100%") and "1000/1000" in lines[-1]
    assert len(lines) == 2 + 3, lines  # the start, one per 30 s passed, the end
    # Between intervals nothing is written, however many updates.
    log2 = io.StringIO()
    bar = progress.tqdm(total=1000, desc="quick", file=log2)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert len(_lines(log2.getvalue())) == 2


def test_stacked_and_erased_bars_leave_no_control_characters(clock):
    """A stage bar (leave=False) under a video bar, as `detect` on a folder draws them: tqdm positions them
    with newlines and cursor-up codes and erases the inner one with spaces; a log keeps only the text."""
    log = io.StringIO()
    outer = progress.tqdm(total=2, desc="detect", unit="video", file=log)
    for _ in range(2):
        inner = progress.tqdm(total=50, desc="flow (dis)", unit="pair", leave=False, file=log)
        for _ in range(50):
            clock[0] += 1.0
            inner.update(1)
        inner.close()
        outer.update(1)
    outer.close()
    lines = _lines(log.getvalue())
    assert sum(line.startswith("flow (dis)") for line in lines) >= 2
    assert lines[-1].startswith("detect: 100%")


class NotebookOutput(io.StringIO):
    """What a Jupyter cell's stderr is: ipykernel's stream, which is no terminal."""


NotebookOutput.__module__ = "ipykernel.iostream"


def test_progress_write_and_a_terminal_are_tqdms_own(clock, capsys):
    for screen in (Terminal(), NotebookOutput()):
        bar = progress.tqdm(total=3, desc="detect", file=screen)
        bar.update(3)
        bar.close()
        assert "\r" in screen.getvalue()  # redrawn in place, as tqdm does
    progress.write("skipped: a.mp4: empty file (0 bytes)")
    assert capsys.readouterr().out == "skipped: a.mp4: empty file (0 bytes)\n"


def test_forced_redraws_wait_for_the_interval_in_a_log(clock):
    """The train loop sets its loss on the bar every few steps (`set_postfix` redraws at once on a terminal):
    in a log that too waits for the interval, and the next line shows the latest loss."""
    log = io.StringIO()
    bar = progress.tqdm(total=100, desc="train", unit="step", file=log)
    for step in range(1, 101):
        clock[0] += 0.5  # 50 s in all
        bar.update(1)
        bar.set_postfix(loss=f"{1 / step:.4f}")
    bar.close()
    lines = _lines(log.getvalue())
    assert len(lines) == 2 + 1, lines  # the start, at 30 s, the end
    assert "loss=0.0100" in lines[-1]
    # A disabled bar (the trainer's with progress=False, and on processes other than 0) takes the same calls.
    bar = progress.tqdm(total=2, file=log, disable=True)
    bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    assert _lines(log.getvalue()) == lines
