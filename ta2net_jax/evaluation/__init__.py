"""Evaluation: a run on its dataset's test split (`evaluate.py`), detectors on labelled video files
(`videos.py`), the protocols (temporal, counting, spatial) over the metrics in `metrics/`, and one report
writer (`report.py`) with its plots."""
