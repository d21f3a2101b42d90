"""Detection on video files: detectors behind one name each (`detectors.py`), peak picking (`events.py`),
the training-free inflection-energy scores, the per-video outputs (`detect.py`) and overlays."""
