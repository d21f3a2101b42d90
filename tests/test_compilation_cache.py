"""The `ta2net` command's persistent compilation cache (ta2net_jax/compilation_cache.py): where it goes, how it is
turned off, that JAX's own setting wins over the default, and that a command really fills it."""

import os
import socket
import subprocess
import sys

from conftest import REPO

from ta2net_jax import compilation_cache as cc


def test_default_is_a_folder_per_host_under_the_user_cache(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    folder = cc.configure(environ, jax_imported=False)
    assert folder == environ[cc.JAX_DIR_ENV] and os.path.dirname(folder) == os.path.join(str(tmp_path), "ta2net", "jax")
    host = os.path.basename(folder)  # the host name, as a safe folder name
    assert host and all(c.isalnum() or c in "-_." for c in host)
    assert host == socket.gethostname() or not socket.gethostname().replace("-", "").replace(".", "").isalnum()
    assert environ[cc.JAX_MIN_TIME_ENV] == "0"  # every program kept


def test_own_setting_jax_setting_and_off():
    environ = {cc.ENV: "gs://bucket/jax", cc.JAX_DIR_ENV: "/jax/own", cc.JAX_MIN_TIME_ENV: "2"}
    assert cc.configure(environ, jax_imported=False) == "gs://bucket/jax"  # ours names the place
    assert environ[cc.JAX_MIN_TIME_ENV] == "2"  # a floor the user set is kept
    environ = {cc.JAX_DIR_ENV: "/jax/own"}
    assert cc.configure(environ, jax_imported=False) == "/jax/own" and environ[cc.JAX_DIR_ENV] == "/jax/own"
    for off in ("off", "OFF", "0", "none"):
        environ = {cc.ENV: off}
        assert cc.configure(environ, jax_imported=False) is None and cc.JAX_DIR_ENV not in environ
        assert cc.JAX_MIN_TIME_ENV not in environ


def test_nothing_changes_once_jax_is_imported():
    environ = {}
    assert cc.configure(environ, jax_imported=True) is None and environ == {}
    assert cc.configure(environ) is None and environ == {}  # the tests' process has imported jax


def test_a_detect_run_fills_the_default_cache(tmp_path):
    """`ta2net detect` with the shipped model on a tiny video, in a fresh process with no cache setting: the
    programs it compiled are in the default folder afterwards; with TA2NET_COMPILATION_CACHE=off nothing is."""
    from input_pipeline import synthetic, video

    clip = synthetic.generate_video(3, synthetic.SceneConfig(height=32, width=32, num_frames=24))
    path = str(tmp_path / "clip.mp4")
    video.write_video(path, clip.frames, clip.fps)
    env = {k: v for k, v in os.environ.items() if k not in (cc.JAX_DIR_ENV, cc.JAX_MIN_TIME_ENV, cc.ENV)}
    # As users run it: oneDNN's convolutions, whose programs the cache cannot hold (ta2net_jax/cpu_kernels.py).
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu", TA2NET_CPU_KERNELS="onednn")
    command = [sys.executable, "-m", "ta2net_jax.cli", "detect", path, "--out", str(tmp_path / "e.json")]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]  # programs with oneDNN calls go uncached, quietly
    folder = cc.default_dir({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert os.path.isdir(folder) and os.listdir(folder), "no compiled program was cached"
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache_off"), **{cc.ENV: "off"})
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not os.path.exists(tmp_path / "cache_off" / "ta2net")
