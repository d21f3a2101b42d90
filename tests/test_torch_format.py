"""torch.save files read and written with NumPy only (ta2net_jax/export/torch_format.py); the check
against torch.load itself is in test_torch_parity.py and test_export.py."""

import io
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from ta2net_jax.export import torch_format


def test_round_trip_keeps_values_dtypes_shapes_and_nesting(tmp_path):
    obj = {
        "epoch": 7,
        "name": "run",
        "state_dict": {
            "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
            "transposed": np.arange(12.0).reshape(3, 4).T,  # non-contiguous input
            "steps": np.array(5, np.int64),  # 0-d tensor
            "half": np.linspace(-1, 1, 5).astype(np.float16),
            "bf16": np.linspace(-1, 1, 5).astype(ml_dtypes.bfloat16),
            "mask": np.array([True, False]),
            "empty": np.zeros((0, 3), np.float32),
        },
        "history": [np.ones(2, np.float32), (1, 2.5)],
    }
    path = str(tmp_path / "x.pt")
    torch_format.save(obj, path)
    back = torch_format.load(path)
    assert back["epoch"] == 7 and back["name"] == "run" and back["history"][1] == (1, 2.5)
    np.testing.assert_array_equal(back["history"][0], obj["history"][0])
    for key, value in obj["state_dict"].items():
        assert back["state_dict"][key].dtype == value.dtype, key
        assert back["state_dict"][key].shape == value.shape, key
        np.testing.assert_array_equal(back["state_dict"][key], value)


def test_storage_records_are_64_byte_aligned(tmp_path):
    path = str(tmp_path / "x.pt")
    torch_format.save({"a": np.ones(3, np.float32), "b": np.ones(5, np.int64)}, path)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data_offset = info.header_offset + 30 + len(info.filename) + len(info.extra)
            assert data_offset % 64 == 0, info.filename


def test_refuses_foreign_objects_and_non_archives(tmp_path):
    evil = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    pickle.dump({"x": print}, buffer, protocol=2)  # a global that a state dict never holds
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
    with pytest.raises(torch_format.TorchFormatError, match=r"evil\.pt: holds a pickled (__builtin__|builtins)\.print"):
        torch_format.load(str(evil))
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02not a zip")
    with pytest.raises(torch_format.TorchFormatError, match="legacy.pt: not a torch.save zip archive"):
        torch_format.load(str(legacy))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        torch_format.load(str(tmp_path / "missing.pt"))
