"""Output paths: checked before any work (right kind, writable, known format), written atomically.

`check_output_file` / `check_output_dir` raise `OutputPathError` (a ValueError: the CLI prints it as one
line) naming the path and the problem; `atomic_path` gives a temporary name in the same folder (same
extension, so writers that pick a format by extension still work) and renames it onto the final name only
when the writer succeeded, so a failure leaves neither a partial file nor a clobbered old one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


class OutputPathError(ValueError):
    """An output path that cannot be written (named in the message)."""


def _nearest_existing(path: str) -> str:
    """The deepest existing ancestor of `path` (the path itself when it exists); a file on the way is
    reported by the callers."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def check_output_dir(path: str, what: str = "output folder") -> None:
    """`path` is a folder, or can be created as one, and is writable."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputPathError(f"{path}: the {what} is a file, not a folder")
    base = _nearest_existing(path)
    if not os.path.isdir(base):
        raise OutputPathError(f"{path}: cannot create the {what}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: the {what} is not writable ({base}: permission denied)")


def check_output_file(path: str, what: str = "output", suffixes: tuple[str, ...] | None = None) -> None:
    """`path` names a file that can be written: not a folder, its folder exists or can be created and is
    writable, and (with `suffixes`) it has one of those extensions."""
    if not path or path.endswith(os.sep):
        raise OutputPathError(f"{path!r}: the {what} must name a file")
    if os.path.isdir(path):
        raise OutputPathError(f"{path}: the {what} is a folder; give a file name")
    if suffixes is not None and not path.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise OutputPathError(f"{path}: unknown {what} format; use {' or '.join(suffixes)}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"{path}: the {what} exists and is not writable")
    check_output_dir(os.path.dirname(os.path.abspath(path)), f"folder of the {what}")


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a temporary path beside `path` (same extension); renames it onto `path` on success and
    removes it on failure."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
