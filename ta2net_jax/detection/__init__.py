"""Detection outputs: dubbing a video with impact sounds at detected events, and cue lists."""
