"""One path layer for every file the project reads or writes: local paths and `gs://` URLs alike.

Everything goes through `etils.epath.Path`, as flax, orbax, grain, TFDS and big_vision do. Without TensorFlow
installed (our case), etils resolves `gs://…` with fsspec's `gcsfs` backend; gcsfs honours
`STORAGE_EMULATOR_HOST` (a local GCS emulator, the tests) and Google's default credentials otherwise.

Guarantees on object storage:

* `write_text` / `write_bytes` (atomic): locally a temporary file in the same folder, then `os.replace`;
  on `gs://` the bytes are sent as **one object upload**. A GCS object upload (simple or resumable) is atomic:
  readers see the old object or the complete new one, never a part (GCS objects are immutable; a new
  generation appears only when its upload is finalised).
* `append_line` (metrics.jsonl): GCS objects cannot be appended to. On `gs://` the object is read, the line
  added and the whole object uploaded again (atomic as above; O(size) per call, fine for a log written every
  `log_every` steps). Locally it is an ordinary append.
* Listings are not cached (see `fsspec.config` below), so what other processes wrote is seen at once.
* Folders do not exist on GCS: `makedirs` is a no-op there (objects create their prefixes).
* `local_copy`: input files given as `gs://` URLs (videos, audio, for decoders that open local files only):
  the object's copy in this machine's cache, `cache_dir(url)` = `$TA2NET_DATA_CACHE/gs/<bucket>/<path>`
  (default `~/.cache/ta2net/data`, the layout `registry` uses for datasets), downloaded once and again only
  when the object's generation or size changes (recorded under `<cache>/.sources/`); each download goes to a
  temporary name renamed onto the copy, so a killed one is never used. A missing object is a one-line
  FileNotFoundError naming the URL. Callers name the URL, never the copy, in what they print or write
  (video.from_local_copy re-raises decoding errors with the URL).
* `list_files`: the files of a folder or `gs://` prefix (one listing request), for folders of videos.
* `read_locally` / `written_locally` / `download_tree` / `upload_tree`: for libraries that need a real file
  (video encoders, matplotlib, safetensors, ArrayRecord's C++ reader and writer): a temporary local copy in,
  or a local file uploaded when done (each upload atomic; `upload_tree` puts completion markers last).
  Locally `written_locally` is `atomic_path`: a temporary name beside the target, renamed onto it only when
  the writer succeeded, so a failure leaves neither a partial file nor a clobbered old one.
* `check_output_file` / `check_output_dir`: every output path is checked before any work (right kind,
  creatable, writable, known format), raising `OutputPathError` (a ValueError the command line prints as one
  line naming the path). On `gs://` only the format is checked (a bucket's permissions show at the upload).

`s3://` URLs are treated as remote too (etils/fsspec's s3fs, when installed); only `gs://` is tested.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import os
import tempfile

import fsspec
import fsspec.core
from etils import epath

REMOTE_PREFIXES = ("gs://", "s3://")

# gcsfs caches folder listings per process; another process's new object (a checkpoint item another host
# committed, a step written by the previous run) would then look absent. Listings are therefore not cached:
# fsspec's configuration supplies this default to every gcsfs instance, etils' and orbax's included.
fsspec.config.conf.setdefault("gs", {}).setdefault("use_listings_cache", False)


_SAID_BY_TYPE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError)


def _names_the_object(fn):
    """For an object-store path, an OSError of the store's client (no route after its retries, a refusal) is
    re-raised with the path in front when its message lacks it (a DNS failure names only the store's host), so
    the command line's one error line says which file; errors that say what happened by their type pass."""

    @functools.wraps(fn)
    def wrapped(p, *args, **kwargs):
        try:
            return fn(p, *args, **kwargs)
        except _SAID_BY_TYPE:
            raise
        except OSError as err:
            if not is_remote(p) or str(p) in str(err):
                raise
            kind = PermissionError if isinstance(err, PermissionError) else OSError
            raise kind(f"{p}: object storage error ({' '.join(str(err).split())})") from err

    return wrapped


def is_remote(path) -> bool:
    """Whether `path` is an object-store URL (`gs://`, `s3://`)."""
    return str(path).startswith(REMOTE_PREFIXES)


def path(p) -> epath.Path:
    return epath.Path(p)


def resolve(p) -> str:
    """`p` as an absolute path (local) or unchanged (URL): the form to log and to hand to orbax."""
    s = os.fspath(p) if not isinstance(p, str) else p
    return s if is_remote(s) else os.path.abspath(s)


def join(*parts) -> str:
    """Joins path parts; keeps `gs://` URLs intact (os.path.join would too, but says so here)."""
    first, *rest = (str(x) for x in parts)
    if is_remote(first):
        return "/".join([first.rstrip("/"), *(r.strip("/") for r in rest)])
    return os.path.join(first, *rest)


@_names_the_object
def exists(p) -> bool:
    return path(p).exists()


@_names_the_object
def isfile(p) -> bool:
    return path(p).is_file()


@_names_the_object
def isdir(p) -> bool:
    return path(p).is_dir()


def makedirs(p) -> None:
    """Creates a local folder (and parents); nothing to do on object stores."""
    if not is_remote(p):
        os.makedirs(p, exist_ok=True)


@_names_the_object
def listdir(p) -> list[str]:
    return sorted(c.name for c in path(p).iterdir())


def open(p, mode: str = "r"):  # noqa: A001 — the same signature as the builtin
    """Opens a local file or an object for reading (or a plain, non-atomic write)."""
    return path(p).open(mode)


@_names_the_object
def read_text(p) -> str:
    return path(p).read_text()


@_names_the_object
def read_bytes(p) -> bytes:
    return path(p).read_bytes()


@_names_the_object
def write_bytes(p, data: bytes) -> None:
    """Atomic write: a local temporary file + `os.replace` (`atomic_path`), or one object upload on `gs://`."""
    if is_remote(p):
        path(p).write_bytes(data)
        return
    with atomic_path(p) as tmp, builtins.open(tmp, "wb") as f:
        f.write(data)


def write_text(p, text: str) -> None:
    """Atomic write of text (UTF-8); see `write_bytes`."""
    write_bytes(p, text.encode("utf-8"))


def append_line(p, line: str) -> None:
    """Appends `line` (a newline is added); on `gs://` the object is rewritten in one upload."""
    if not line.endswith("\n"):
        line += "\n"
    if is_remote(p):
        old = read_bytes(p) if exists(p) else b""
        write_bytes(p, old + line.encode("utf-8"))
        return
    with builtins.open(p, "a") as f:
        f.write(line)


@_names_the_object
def remove(p) -> None:
    path(p).unlink(missing_ok=True)


@_names_the_object
def getsize(p) -> int:
    if is_remote(p):
        fs, key = _fs(p)
        return int(fs.info(key)["size"])
    return os.path.getsize(p)


def copy_file(src, dst) -> None:
    """Copies one file between any two places (local or object store); the write is atomic."""
    write_bytes(dst, read_bytes(src))


def upload_tree(local_dir: str, dst, last: tuple[str, ...] = ()) -> list[str]:
    """Copies every file under `local_dir` to the same relative path under `dst`; files named in `last` (the
    markers that say a folder is complete, e.g. meta.json, dataset_info.json) go after all others, so an
    interrupted upload never looks complete. Returns the copied names ('/'-separated)."""
    names = []
    for root, _, files in os.walk(local_dir):
        names += [os.path.relpath(os.path.join(root, f), local_dir).replace(os.sep, "/") for f in files]
    names.sort(key=lambda n: (n.rsplit("/", 1)[-1] in last, n))
    for rel in names:
        copy_file(os.path.join(local_dir, *rel.split("/")), join(str(dst), rel))
    return names


def walk_files(root) -> list[str]:
    """Every file under `root`, as paths relative to it ('/'-separated), sorted (epath's `rglob` refuses
    `gs://`, so the listing goes one prefix at a time)."""
    out, todo = [], [("", path(root))]
    while todo:
        rel, folder = todo.pop()
        for child in folder.iterdir():
            name = f"{rel}/{child.name}" if rel else child.name
            if child.is_dir():
                todo.append((name, child))
            else:
                out.append(name)
    return sorted(out)


def download_tree(src, local_dir: str) -> list[str]:
    """Copies every object under `src` into `local_dir` (same relative paths); returns the copied names."""
    copied = walk_files(src)
    for rel in copied:
        write_bytes(os.path.join(local_dir, *rel.split("/")), read_bytes(join(str(src), rel)))
    return copied


@contextlib.contextmanager
def written_locally(dst):
    """For writers that need a local file (matplotlib, video encoders): yields a local path for `dst`; on a
    `gs://` destination that is a temporary file, uploaded in one object write when the block ends."""
    if not is_remote(dst):
        with atomic_path(dst) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, str(dst).rstrip("/").rsplit("/", 1)[-1])
        yield local
        copy_file(local, dst)


def _fs(url):
    """(fsspec filesystem, path inside it) of an object-store URL."""
    return fsspec.core.url_to_fs(str(url))


def list_files(folder, *, recursive: bool = False) -> list[str]:
    """The files directly in `folder` (or anywhere below it), as paths or URLs under `folder`, sorted; on object
    storage one listing (a prefix listing; "folder" placeholder objects, names ending in "/", are left out)."""
    folder = str(folder)
    if not is_remote(folder):
        if recursive:
            found = [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]
        else:
            found = [os.path.join(folder, f) for f in os.listdir(folder)]
        return sorted(p for p in found if os.path.isfile(p))
    fs, key = _fs(folder)
    key = key.rstrip("/")
    if recursive:
        names = fs.find(key)
    else:
        names = [e["name"] for e in fs.ls(key, detail=True) if e["type"] == "file"]
    return sorted(fs.unstrip_protocol(n) for n in names if not n.endswith("/") and n.rstrip("/") != key)


# ---- Local copies of remote inputs (decoders need files) -------------------------------------------------

CACHE_ENV = "TA2NET_DATA_CACHE"


def cache_dir(url=None) -> str:
    """Where this machine keeps copies of remote data: `$TA2NET_DATA_CACHE` (default `~/.cache/ta2net/data`),
    and for `url` its place under it, `<root>/<scheme>/<bucket>/<path>` (one copy per object or folder)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "ta2net", "data")
    if url is None:
        return root
    scheme, _, rest = str(url).partition("://")
    return os.path.join(root, scheme, *[p for p in rest.split("/") if p])


def _stamp(info: dict) -> dict:
    """What identifies an object's content: its size and GCS generation (a new number at every upload; S3:
    the ETag), or its modification time where neither is given."""
    version = info.get("generation") or info.get("ETag") or info.get("updated") or info.get("LastModified")
    return {"size": int(info["size"]), "version": str(version)}


@_names_the_object
def local_copy(src) -> str:
    """A local file with the bytes of `src`: `src` itself when it is local; for an object-store URL its copy at
    `cache_dir(src)`, downloaded only when missing or when the object's size or generation differ from the copy's
    (recorded in `<root>/.sources/…`, outside the copy tree, so copied folders hold only the objects).

    The download goes to a temporary name and is renamed onto the copy, so an interrupted one is never used.
    Raises FileNotFoundError (no such object), IsADirectoryError (a folder) or OSError (the store cannot be
    reached or refuses), each one line naming `src`.
    """
    if not is_remote(src):
        return src
    src = str(src)
    fs, key = _fs(src)
    try:
        info = fs.info(key)
    except FileNotFoundError:
        raise FileNotFoundError(f"{src}: no such file or folder") from None
    if info.get("type") == "directory":
        raise IsADirectoryError(f"{src}: is a folder, not a file")
    local = cache_dir(src)
    record = os.path.join(cache_dir(), ".sources", os.path.relpath(local, cache_dir()) + ".json")
    stamp = _stamp(info)
    with contextlib.suppress(OSError, ValueError):
        if os.path.getsize(local) == stamp["size"] and json.loads(read_text(record)) == stamp:
            return local
    # The record names the generation listed before the download: were the object replaced meanwhile, the
    # copy holds newer bytes than recorded, and the next call's comparison downloads it again.
    with contextlib.suppress(FileNotFoundError):
        os.remove(record)
    with atomic_path(local) as tmp:
        fs.get_file(key, tmp)
    write_text(record, json.dumps(stamp))
    return local


@contextlib.contextmanager
def read_locally(src):
    """For readers that need a local file (video decoders): yields `src` itself, or a local temporary copy of
    a `gs://` object."""
    if not is_remote(src):
        yield src
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, str(src).rstrip("/").rsplit("/", 1)[-1])
        write_bytes(local, read_bytes(src))
        yield local


# ---- Output paths: checked before any work, written atomically ------------------------------------------


class OutputPathError(ValueError):
    """An output path that cannot be written (named in the message)."""


@contextlib.contextmanager
def atomic_path(p):
    """Yields a temporary local path beside `p` (same extension, so writers that pick a format by extension
    still work); renames it onto `p` on success and removes it on failure."""
    folder = os.path.dirname(os.path.abspath(p))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{os.path.splitext(name)[1]}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _nearest_existing(p: str) -> str:
    """The deepest existing ancestor of `p` (`p` itself when it exists)."""
    current = os.path.abspath(p)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def check_output_dir(p, what: str = "output folder") -> None:
    """`p` is a folder, or can be created as one, and is writable."""
    if is_remote(p):
        return
    if os.path.exists(p) and not os.path.isdir(p):
        raise OutputPathError(f"{p}: the {what} is a file, not a folder")
    base = _nearest_existing(p)
    if not os.path.isdir(base):
        raise OutputPathError(f"{p}: cannot create the {what}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputPathError(f"{p}: the {what} is not writable ({base}: permission denied)")


def check_output_file(p, what: str = "output", suffixes: tuple[str, ...] | None = None) -> None:
    """`p` names a file that can be written: not a folder, its folder exists or can be created and is writable,
    and (with `suffixes`) it has one of those extensions."""
    p = str(p) if p else p
    if not p or p.endswith(("/", os.sep)):
        raise OutputPathError(f"{p!r}: the {what} must name a file")
    if suffixes is not None and not p.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise OutputPathError(f"{p}: unknown {what} format; use {' or '.join(suffixes)}")
    if is_remote(p):
        return
    if os.path.isdir(p):
        raise OutputPathError(f"{p}: the {what} is a folder; give a file name")
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise OutputPathError(f"{p}: the {what} exists and is not writable")
    check_output_dir(os.path.dirname(os.path.abspath(p)), f"folder of the {what}")
