"""Metrics on hand-checkable definitions: event timing (`timing.py`, the original's ±3-frame metric and
one-to-one F1), average precision (`ap.py`), counting (`counting.py`) and sound-source maps (`spatial.py`)."""
