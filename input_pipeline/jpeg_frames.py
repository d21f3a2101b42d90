"""Lazy frames and flow: every dataset keeps its flow in a flat float16 side file per split (written by
`flow_to_side_file` below while the builders of input_pipeline/datasets/ write the records), and the real-video
datasets store one JPEG per frame in the records; a clip reads and decodes only its own.

`DecodedSource(source)` wraps a TFDS data source whose examples have `flow_file` and `flow_offset`, and
either `frames_jpeg` ([N] bytes) and `size` (real videos) or `frames` ([N, H, W, 3] uint8, the synthetic
sets), and gives examples with
* `frames`: for real videos a `JpegFrames` that behaves like the [N, H, W, 3] uint8 array the clip code
  (input_pipeline/clips.py) indexes: `.shape`, `len`, integer / slice / index-array `[...]`, `np.asarray`.
  A 64-frame training clip from a 300-frame video thus decodes 64 JPEGs, not 300; overlapping evaluation
  windows decode each frame once (decoded frames are cached per example). Stored frames pass as they are;
* `flow_fwd`, `flow_bwd`: read-only [N−1, H, W, 2] float16 views (np.memmap, an ndarray) of the side file,
  mapped once per process. Indexing copies only the fields asked for: a 64-frame clip reads its 2 × 65
  fields (~6.5 MB at 112²), not the video's 2 × 299 (~30 MB), and nothing is parsed.

JPEG decoding uses OpenCV straight to RGB: on 112² quality-95 frames 0.11 ms per frame, against 0.25 ms
for PIL (both libjpeg-turbo; PIL's draft mode does not help at full size).
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

FLOW_DTYPE = np.dtype("<f2")  # the side file's element type, whatever the host's byte order


def flow_file_name(split: str) -> str:
    return f"flow-{split}.f16"


def append_flow(path: str, flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> int:
    """Appends one video's forward then backward flow ([N−1,S,S,2] each) to the side file `path` as
    little-endian float16; returns the byte offset where they start."""
    if flow_fwd.shape != flow_bwd.shape:
        raise ValueError(f"forward flow {flow_fwd.shape} and backward flow {flow_bwd.shape} differ")
    with open(path, "ab") as f:
        offset = f.seek(0, os.SEEK_END)
        for flow in (flow_fwd, flow_bwd):
            f.write(np.ascontiguousarray(flow, FLOW_DTYPE).data)
    return offset


def flow_to_side_file(data_dir: str, split: str, examples):
    """A builder's `(key, example)` pairs → the same, each example's `flow_fwd` / `flow_bwd` appended to the
    split's side file in `data_dir` and replaced by `flow_file` / `flow_offset`. During generation `data_dir` is
    TFDS's temporary folder, so the side file appears with the records or not at all."""
    path = os.path.join(data_dir, flow_file_name(split))
    for key, example in examples:
        offset = append_flow(path, example.pop("flow_fwd"), example.pop("flow_bwd"))
        yield key, {**example, "flow_file": flow_file_name(split), "flow_offset": np.int64(offset)}


def decode_jpeg(data) -> np.ndarray:
    """JPEG bytes → [H, W, 3] uint8 RGB (decoded straight to RGB: no separate colour conversion)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise ValueError("corrupt JPEG frame in the dataset")
    return image


class JpegFrames:
    """[N, H, W, 3] uint8 RGB frames decoded on access (see module docstring)."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, jpegs, height: int, width: int):
        self._jpegs = jpegs
        self.shape = (len(jpegs), int(height), int(width), 3)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def _frame(self, i: int) -> np.ndarray:
        frame = self._cache.get(i)
        if frame is None:
            frame = self._cache[i] = decode_jpeg(self._jpegs[i])
        return frame

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._frame(range(self.shape[0])[index])
        if isinstance(index, tuple):  # frames[i, ...]: decode the frames, then index the rest
            return self[index[0]][(slice(None),) + index[1:]]
        indices = np.arange(self.shape[0])[index]
        out = np.empty((len(indices),) + self.shape[1:], np.uint8)
        for j, i in enumerate(indices.tolist()):
            out[j] = self._frame(i)
        return out

    def __array__(self, dtype=None, copy=None):
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)


class FlowFiles:
    """The flow side files of one dataset folder, each memory-mapped once per process (picklable: the maps
    are reopened in a grain worker)."""

    def __init__(self, data_dir: str):
        self.data_dir = os.fspath(data_dir)
        self._maps: dict[str, np.memmap] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"data_dir": self.data_dir}

    def __setstate__(self, state):
        self.__init__(state["data_dir"])

    def _map(self, name: str) -> np.memmap:
        flow = self._maps.get(name)
        if flow is None:
            with self._lock:
                flow = self._maps.get(name)
                if flow is None:
                    path = os.path.join(self.data_dir, name)
                    if os.path.basename(name) != name:
                        raise ValueError(
                            f"{self.data_dir}: a record names the flow file {name!r}, not a file of the dataset folder"
                        )
                    if not os.path.isfile(path):
                        raise FileNotFoundError(
                            f"{path}: flow side file missing; rebuild the dataset (`ta2net build --config CONFIG`)"
                        )
                    try:
                        flow = self._maps[name] = np.memmap(path, FLOW_DTYPE, mode="r")
                    except ValueError as e:  # empty, or not a whole number of float16 values
                        raise ValueError(f"{path}: unreadable flow side file ({e}); rebuild the dataset") from e
        return flow

    def arrays(self, name: str, offset: int, num_fields: int, height: int, width: int):
        """(flow_fwd, flow_bwd) of one example: [num_fields, height, width, 2] views of the mapped file."""
        flow = self._map(name)
        field = height * width * 2
        start, count = int(offset) // FLOW_DTYPE.itemsize, num_fields * field
        if int(offset) % FLOW_DTYPE.itemsize or start + 2 * count > flow.size:
            raise ValueError(
                f"{os.path.join(self.data_dir, name)}: the flow of an example at byte {offset} "
                f"({2 * count * FLOW_DTYPE.itemsize} bytes) lies outside the file "
                f"({flow.size * FLOW_DTYPE.itemsize} bytes); the dataset is damaged, rebuild it"
            )
        shape = (num_fields, height, width, 2)
        return (flow[start : start + count].reshape(shape), flow[start + count : start + 2 * count].reshape(shape))


def with_decoded_frames(example: dict, flow_files: FlowFiles) -> dict:
    """A stored example → the array view the clip code expects.

    `flow_file` / `flow_offset` become `flow_fwd` / `flow_bwd` [N−1, H, W, 2] float16 views of the side file (no
    copy, no parse); a real video's `frames_jpeg` ([N] bytes) becomes lazy `frames` [N, H, W, 3] uint8.
    """
    if "flow_file" not in example:
        return example
    example = dict(example)
    if "frames_jpeg" in example:
        height, width = (int(x) for x in example.pop("size"))
        example["frames"] = JpegFrames(example.pop("frames_jpeg"), height, width)
    num_frames, height, width = example["frames"].shape[:3]
    name = example.pop("flow_file")
    name = name.decode() if isinstance(name, bytes) else str(name)
    example["flow_fwd"], example["flow_bwd"] = flow_files.arrays(
        name, example.pop("flow_offset"), num_frames - 1, height, width
    )
    return example


class DecodedSource:
    """A grain-compatible random-access source: `source[i]` with flow views of the side file and, for real
    videos, lazy JPEG `frames` (picklable). `data_dir`: the dataset folder (default: the TFDS source's)."""

    def __init__(self, source, data_dir: str | None = None):
        self._source = source
        self._flow = FlowFiles(data_dir if data_dir is not None else source.dataset_info.data_dir)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index):
        return with_decoded_frames(self._source[index], self._flow)

    def __getitems__(self, indices):
        return [self[i] for i in indices]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"DecodedSource({self._source!r})"
