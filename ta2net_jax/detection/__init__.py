"""Detection on video files: detectors behind one name each (`detectors.py`), peak picking (`events.py`),
the training-free inflection-energy scores, the per-video outputs (`detect.py`), overlays, dubbing a video
with impact sounds at the detected events (`dub.py`) and cue lists for editors (`cues.py`)."""
