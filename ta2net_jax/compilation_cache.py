"""A persistent XLA compilation cache for every `ta2net` command, on by default.

A restarted job (after a preemption, or the next `ta2net detect` on another clip) compiles the same programs
again; with the cache it loads them. Measured on the 2-core CPU: `ta2net detect hitting_metal.mp4` (the shipped
model) 6.2 s the first time, 4.4 s from then on; on accelerators the paper model's train step is the program
worth keeping.

Where (`configure`, called by the command line before anything imports jax, so the grain workers and processes
it starts inherit it through the environment):

* `$TA2NET_COMPILATION_CACHE`: a folder or a `gs://` URL; `off` sets none;
* else `$JAX_COMPILATION_CACHE_DIR`, JAX's own setting, left as it is;
* else `~/.cache/ta2net/jax/<host name>` (`$XDG_CACHE_HOME` instead of `~/.cache` when set). One folder per
  host because XLA:CPU compiles for the host CPU's features: a cache shared by unlike machines (a home folder
  on NFS) would be refused entry by entry, each refusal a warning and a recompilation.

Every program is kept, however fast it compiles (`JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` 0 unless set):
JAX's default floor of 1 s keeps none of detect's. JAX treats a cache as trusted code, so the default lives in
the user's own home. Python code that imports jax itself (a notebook, the tests) configures its own cache.
"""

from __future__ import annotations

import os
import socket
import sys

ENV = "TA2NET_COMPILATION_CACHE"
JAX_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
JAX_MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
OFF = ("off", "none", "0", "false", "no")


def default_dir(environ=os.environ) -> str:
    """`~/.cache/ta2net/jax/<host name>` (or under `$XDG_CACHE_HOME`)."""
    root = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "host"
    return os.path.join(root, "ta2net", "jax", host)


def configure(environ=os.environ, *, jax_imported: bool | None = None) -> str | None:
    """Points JAX's persistent compilation cache at the folder chosen as the module docstring says, through
    `environ` (JAX reads it when it is imported); returns that folder, or None when none is set. Does nothing
    once jax is imported (`jax_imported`, default: whether it is in sys.modules): the process then has its own."""
    if jax_imported is None:
        jax_imported = "jax" in sys.modules
    if jax_imported:
        return None
    choice = environ.get(ENV, "").strip()
    if choice.lower() in OFF:
        return environ.get(JAX_DIR_ENV) or None  # "off": nothing of ours; JAX's own setting still applies
    if choice:
        environ[JAX_DIR_ENV] = choice
    elif not environ.get(JAX_DIR_ENV):
        environ[JAX_DIR_ENV] = default_dir(environ)
    environ.setdefault(JAX_MIN_TIME_ENV, "0")
    return environ[JAX_DIR_ENV]
