"""Read and write PyTorch's `torch.save` files (the zip format, torch ≥ 1.6) with NumPy only.

A state_dict checkpoint is a zip archive holding `data.pkl` (a protocol-2 pickle whose tensors are
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` calls and whose storages are
persistent ids `('storage', torch.FloatStorage, key, location, numel)`) plus one raw little-endian
record per storage under `data/<key>`. Reading and writing that directly lets `ta2net import-torch`
and `ta2net export --format torch` run in the JAX environment, where PyTorch is not installed (its CPU
wheels exist only for other Python versions here, docs/export.md).

Only what state dicts need is understood: tensors (any strides, any of the dtypes below), nested
dicts / OrderedDicts / lists / tuples and plain Python scalars and strings. Any other pickled object is
refused with an error naming the file and the object, never executed.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_STORAGE_NAMES = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items()}
_ALIGNMENT = 64  # torch aligns storage records to 64 bytes (needed for torch.load(mmap=True))


class TorchFormatError(ValueError):
    """A file that is not a readable torch.save state dict; the message names the file."""


# ---- reading -------------------------------------------------------------------------------------


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    if not size:
        return np.array(storage[storage_offset])
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)  # a contiguous copy, independent of the archive buffer


def _rebuild_parameter(data, *_):
    return data


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.path = archive, prefix, path
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFormatError(
            f"{self.path}: holds a pickled {module}.{name}, which a state dict does not need; "
            f"refusing to load it (save only tensors and plain containers)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFormatError(f"{self.path}: unknown persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if key not in self.storages:
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else None
            if dtype is None:
                raise TorchFormatError(f"{self.path}: storage {key} has no known dtype ({storage_type!r})")
            raw = self.archive.read(f"{self.prefix}data/{key}")
            self.storages[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=numel).astype(dtype)
        return self.storages[key]


def load(path: str):
    """The object `torch.save` wrote to `path`, with every tensor as a NumPy array."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise TorchFormatError(
            f"{path}: not a torch.save zip archive (files written by torch < 1.6 or with "
            f"_use_new_zipfile_serialization=False are not supported; re-save with torch ≥ 1.6)"
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise TorchFormatError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise TorchFormatError(f"{path}: big-endian archives are not supported")
        try:
            return _Unpickler(archive.read(pickles[0]), archive, prefix, path).load()
        except (pickle.UnpicklingError, EOFError, KeyError) as err:
            raise TorchFormatError(f"{path}: corrupt archive ({err})") from err


# ---- writing -------------------------------------------------------------------------------------


class _Global:
    """A reference to `module.name` written as a pickle GLOBAL, without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce requires a callable
        raise TypeError("placeholder for a torch global")


class _Tensor:
    def __init__(self, array: np.ndarray, key: str):
        self.array, self.key = np.array(array, order="C", copy=True), key


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_global_ref(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = _save_global_ref

    def persistent_id(self, obj):
        if isinstance(obj, _Tensor):  # the storage; the tensor itself is reduced below
            return None
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__storage__":
            tensor = obj[1]
            name = _STORAGE_NAMES[tensor.array.dtype]
            return ("storage", _Global("torch", name), tensor.key, "cpu", int(tensor.array.size))
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _Tensor):
            shape = tuple(int(d) for d in obj.array.shape)
            stride = tuple(int(s) // obj.array.itemsize for s in obj.array.strides) if obj.array.ndim else ()
            args = (("__storage__", obj), 0, shape, stride, False, collections.OrderedDict())
            return _Global("torch._utils", "_rebuild_tensor_v2"), args
        return NotImplemented


def _wrap_arrays(obj, tensors: list):
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _wrap_arrays(v, tensors)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap_arrays(v, tensors) for v in obj)
    if isinstance(obj, (np.ndarray, np.generic)):
        array = np.asarray(obj)
        if array.dtype not in _STORAGE_NAMES:
            raise TypeError(f"dtype {array.dtype} has no torch storage type")
        tensors.append(_Tensor(array, str(len(tensors))))
        return tensors[-1]
    return obj


def _write_aligned(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name.encode("utf-8"))
    pad = (-(archive.fp.tell() + header + 4)) % _ALIGNMENT
    info.extra = b"FB" + pad.to_bytes(2, "little") + b"\0" * pad  # padding extra field, as torch writes
    archive.writestr(info, data)


def save(obj, path: str, archive_name: str = "archive") -> None:
    """Writes `obj` (dicts/lists of NumPy arrays and scalars) so that `torch.load(path)` returns it
    with tensors in place of the arrays (also with torch.load's default weights_only=True)."""
    tensors: list[_Tensor] = []
    wrapped = _wrap_arrays(obj, tensors)
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(wrapped)
    tmp = f"{path}.tmp-{os.getpid()}"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        _write_aligned(archive, f"{archive_name}/data.pkl", buffer.getvalue())
        _write_aligned(archive, f"{archive_name}/byteorder", b"little")
        for tensor in tensors:
            _write_aligned(
                archive,
                f"{archive_name}/data/{tensor.key}",
                tensor.array.astype(tensor.array.dtype.newbyteorder("<")).tobytes(),
            )
        _write_aligned(archive, f"{archive_name}/version", b"3\n")
    os.replace(tmp, path)
