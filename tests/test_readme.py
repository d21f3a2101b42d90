"""README's Python example runs as written and does what its comments say."""

import os
import re

import pytest
from conftest import REPO, realdata


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_example_detects_with_the_shipped_model(monkeypatch, capsys):
    from ta2net_jax.export import bundle

    realdata("greatest_hits_condfoleygen", "hitting_metal.mp4")  # skips where the clips are absent
    blocks = python_blocks(open(os.path.join(REPO, "README.md"), encoding="utf-8").read())
    assert len(blocks) == 1, "README's Python blocks changed: run each of them here"
    monkeypatch.chdir(REPO)  # README's paths are relative to the repo root
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    result, analysis = namespace["result"], namespace["analysis"]
    # No workdir: the model shipped inside the package, as `ta2net detect` uses it.
    assert result["method"] == "model" and result["workdir"] == bundle.packaged_model_dir()
    assert result["events"] and set(result["events"][0]) == {"frame", "time_s", "score", "x", "y"}
    assert len(capsys.readouterr().out.splitlines()) == len(result["events"])  # one printed line per event
    n = result["num_frames"]
    assert analysis["scores"].shape == (n,) and analysis["maps"].shape[0] == n
    assert namespace["detector"].method == "inflection" and analysis["events"]


def test_python_blocks_are_found():
    text = "a\n```python\nx = 1\n```\nb\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


def test_what_readme_says_a_bad_video_raises(tmp_path):
    from input_pipeline.video import VideoReadError
    from ta2net_jax.detection.detect import detect

    text_file = tmp_path / "notes.mp4"
    text_file.write_text("not a video")
    for path in (str(tmp_path / "missing.mp4"), str(text_file)):
        with pytest.raises(VideoReadError, match=path):
            detect(path, method="inflection")
