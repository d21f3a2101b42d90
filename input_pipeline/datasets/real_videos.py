"""Shared machinery of the real-video TFDS builders (audible623.py, repcount.py): find videos, prepare them,
write ArrayRecord, report everything.

Flow of a build (`build(...)` below):
1. the subclass reads its annotation CSVs → per split a list of `Item`s plus anomalies;
2. `VideoIndex` walks the manual_dir once and finds each item's video by id, anywhere, any container;
3. every found video is prepared once (input_pipeline/prepare.py: decode, resize, flow, JPEG; parallel,
   resumable, cached under `<data_dir>/prepared/<dataset>/<options>/`);
4. examples are written; a missing video is listed by id, a corrupt one skipped and named, and
   `build_report.json` + `build_report.txt` (every anomaly, missing ids, skipped files) are written beside
   the dataset, with a one-paragraph summary on the console.

Common example features (N frames of S×S, S = config.image_size):
    id            text           unique example key (the video id; `id#2` for a repeated id)
    video_id      text           the id the video file was found by
    source_file   text           that file, relative to the manual_dir
    fps           float32        frames per second of the stored frames (native unless resampled)
    native_fps    float32        the file's frame rate
    num_frames    int32          N
    frames_jpeg   [N] bytes      RGB JPEG per frame (decoded lazily by input_pipeline/jpeg_frames.py)
    flow_file     text           the flow side file of the example's split, beside the records (below)
    flow_offset   int64          byte offset of the example's flow in that file
    size          [2] int32      (S, S)
    event_frames  [E] int32      0-based frames of the events at `fps`

Flow is not in the records: each split has one flat side file `flow-<split>.f16` in the dataset folder, holding
per example the forward flow [N−1,S,S,2] (frame k → k+1) and then the backward flow [N−1,S,S,2] (frame
k+1 → k), little-endian float16 (u, v) in pixels, starting at `flow_offset`. A record (JPEGs only) is ~1/17
of the record with flow it replaces, and the reader maps the side file (np.memmap), so a 64-frame clip
touches only its own 2 × 65 flow fields (input_pipeline/jpeg_frames.py).
(`pipeline.data_source` returns `frames` [N,S,S,3] uint8 (lazy JPEG) and `flow_fwd` / `flow_bwd` as
[N−1,S,S,2] float16 arrays.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import frame_times, prepare as prepare_lib, video_files
from input_pipeline.datasets import writing
from input_pipeline.datasets.audible623_csv import Anomaly
from input_pipeline.datasets.builder_pickling import PickledByConfigName
from input_pipeline.datasets.real_video_configs import Item
from input_pipeline.datasets.video_index import VideoIndex
from input_pipeline.jpeg_frames import flow_to_side_file


class RealVideoBuilder(PickledByConfigName, tfds.core.GeneratorBasedBuilder):
    """Base class; subclasses define `_annotations()` and `_extra_features()`."""

    VERSION = tfds.core.Version("2.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "2.0.0": "Flow moved from the records to a flat float16 side file per split (flow-<split>.f16).",
        "2.1.0": "Static black borders (letterbox, pillarbox) cropped before the resize (`crop_borders`).",
    }
    EVAL_SPLIT = "test"  # a video id in this split and another is kept here only

    def __init__(
        self,
        *,
        manual_dir: str | None = None,
        annotations_dir: str | None = None,
        prepared_dir: str | None = None,
        workers: int = 1,
        runner: prepare_lib.Runner | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._manual = manual_dir
        self._annotations_dir = annotations_dir
        self._prepared = prepared_dir
        self._workers = workers
        self._runner = runner  # None: the local process pool (prepare_lib.Runner)
        self.report: dict = {}

    # -- subclass hooks ---------------------------------------------------------------------------
    def _extra_features(self) -> dict:
        return {}

    def _extra_values(self, item: Item, meta: dict) -> dict:
        """Builder-specific feature values of one example (meta: the prepared video's meta.json)."""
        del meta
        return item.extra

    def _annotations(self, annotations_dir: str) -> tuple[dict[str, list[Item]], list[Anomaly], dict]:
        """(items per split, anomalies, report extras such as the label files read)."""
        raise NotImplementedError

    # -- TFDS -------------------------------------------------------------------------------------
    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "video_id": tfds.features.Text(),
                    "source_file": tfds.features.Text(),
                    "fps": tfds.features.Scalar(np.float32),
                    "native_fps": tfds.features.Scalar(np.float32),
                    "num_frames": tfds.features.Scalar(np.int32),
                    "frames_jpeg": tfds.features.Tensor(shape=(None,), dtype=np.object_),
                    # Flow lives in a side file (module docstring): in the record it was 95 % of the bytes, and
                    # every clip read the whole video's flow to use ~1/4 of it.
                    "flow_file": tfds.features.Text(),
                    "flow_offset": tfds.features.Scalar(np.int64),
                    "size": tfds.features.Tensor(shape=(2,), dtype=np.int32),  # (H, W) of frames and flow
                    "event_frames": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                    **self._extra_features(),
                }
            ),
            homepage="https://arxiv.org/abs/2506.13320",
        )

    @property
    def manual_dir(self) -> str:
        """The videos: as given, else TFDS's default `<data_dir>/downloads/manual`."""
        return self._manual or os.path.join(self._data_dir_root, "downloads", "manual")

    @property
    def prepared_dir(self) -> str:
        root = self._prepared or os.path.join(self._data_dir_root, "prepared", self.name)
        return os.path.join(root, self.builder_config.prepare_options().tag())

    def plan(self, manual_dir: str) -> tuple[dict[str, list[tuple[Item, str]]], dict[str, str]]:
        """Reads annotations and locates videos: ({split: [(item, path)]}, {folder key: path}).
        Fills self.report with anomalies and missing ids."""
        if not os.path.isdir(manual_dir):
            raise FileNotFoundError(f"{manual_dir}: manual_dir not found (put the {self.name} videos there)")
        annotations_dir = self._annotations_dir or manual_dir
        splits, anomalies, extras = self._annotations(annotations_dir)
        index = VideoIndex(manual_dir)
        found: dict[str, list[tuple[Item, str]]] = {}
        missing: dict[str, list[str]] = {}
        videos: dict[str, str] = {}
        used = set()
        for split, items in splits.items():
            found[split], missing[split] = [], []
            for item in items:
                path, note = index.find(item.video_id, item.segment)
                if path is None:
                    missing[split].append(item.key)
                    continue
                if note and path not in used:
                    anomalies.append(Anomaly("ambiguous_file", item.where.rsplit(":", 1)[0], 0, item.video_id, note))
                used.add(path)
                videos[video_files.folder_key(item.video_id)] = path
                found[split].append((item, path))
        self.report = {
            "dataset": f"{self.name}/{self.builder_config.name}",
            "manual_dir": os.path.abspath(manual_dir),
            "annotations_dir": os.path.abspath(annotations_dir),
            **extras,
            "video_files_indexed": index.num_files,
            "videos_found": {s: len(v) for s, v in found.items()},
            "missing": missing,
            "corrupt": {},
            "anomalies": [dataclasses.asdict(a) for a in anomalies],
            "unused_video_files": sorted({index.rel(p) for ps in index.by_id.values() for p, _ in ps if p not in used})[
                :50
            ],
        }
        self._index = index
        return found, videos

    def prepare_videos(self, manual_dir: str | None = None):
        """Locates and prepares (resumably, in parallel) every video of every split, without writing the
        dataset: `ta2net prepare --config`. Returns (found pairs per split, prepare summary)."""
        manual_dir = os.fspath(manual_dir or self.manual_dir)
        found, videos = self.plan(manual_dir)
        out = self.prepared_dir
        os.makedirs(out, exist_ok=True)
        for key, path in videos.items():  # a cached folder prepared from another file is redone
            if prepare_lib.is_prepared(out, key):
                with open(os.path.join(out, key, "meta.json")) as f:
                    if json.load(f)["source"] != os.path.abspath(path):
                        shutil.rmtree(os.path.join(out, key))
        summary = prepare_lib.prepare_all(
            sorted(videos.items()),
            out,
            self.builder_config.prepare_options(),
            workers=self._workers,
            desc=f"prepare {self.name}",
            runner=self._runner,
        )
        self.report["prepare"] = {
            "prepared": len(summary.prepared),
            "reused": len(summary.reused),
            "failed": len(summary.failed),
            "seconds": round(summary.seconds, 1),
        }
        for split, pairs in found.items():
            self.report["corrupt"][split] = [
                {"id": item.key, "file": path, "error": summary.failed[video_files.folder_key(item.video_id)]}
                for item, path in pairs
                if video_files.folder_key(item.video_id) in summary.failed
            ]
        return found, summary

    def _split_generators(self, dl_manager):
        del dl_manager  # its manual_dir asserts on a missing folder; plan() names the folder instead
        manual_dir = self.manual_dir
        found, summary = self.prepare_videos(manual_dir)
        kept = {
            split: [(i, p) for i, p in pairs if video_files.folder_key(i.video_id) not in summary.failed]
            for split, pairs in found.items()
        }
        # TFDS cannot write a split without examples: such a split is left out and named in the report.
        self.report["empty_splits"] = [split for split, pairs in kept.items() if not pairs]
        if not any(kept.values()):
            raise FileNotFoundError(
                f"{manual_dir}: none of the {self.name} videos was found or readable "
                f"({sum(len(v) for v in self.report['missing'].values())} missing, "
                f"{sum(len(v) for v in self.report['corrupt'].values())} unreadable)"
            )
        return {
            split: flow_to_side_file(self.data_dir, split, self._generate_examples(split, pairs))
            for split, pairs in kept.items()
            if pairs
        }

    def _generate_examples(self, split: str, pairs: list[tuple[Item, str]]):
        anomalies = self.report["anomalies"]
        for item, path in pairs:
            data = prepare_lib.load_prepared(self.prepared_dir, video_files.folder_key(item.video_id))
            meta = data["meta"]
            n = meta["num_frames"]
            events = np.unique(
                frame_times.output_frames(np.asarray(item.event_frames, np.int64), meta, self.builder_config.fps)
            )
            file = item.where.rsplit(":", 1)[0]
            line = int(item.where.rsplit(":", 1)[1]) if ":" in item.where else 0
            if (events >= n).any():
                cap = self.builder_config.max_frames
                why = (
                    f"the {cap}-frame cap"
                    if cap is not None and meta["native_frames_decoded"] >= cap
                    else "the end of the video"
                )
                anomalies.append(
                    dataclasses.asdict(
                        Anomaly(
                            "beyond_video_end",
                            file,
                            line,
                            item.key,
                            f"event frames {events[events >= n].tolist()} dropped: the stored video has {n} frames "
                            f"(cut at {why})",
                        )
                    )
                )
                events = events[events < n]
            edge = events[(events < 2) | (events >= n - 2)]
            if edge.size:
                anomalies.append(
                    dataclasses.asdict(
                        Anomaly(
                            "edge_event",
                            file,
                            line,
                            item.key,
                            f"event frames {edge.tolist()} lie on the first/last 2 frames, which are never model "
                            "inputs (inflection flow needs 2 flows each side); kept in event_frames",
                        )
                    )
                )
            yield (
                item.key,
                {
                    "id": item.key,
                    "video_id": item.video_id,
                    "source_file": self._index.rel(path),
                    "fps": np.float32(meta["fps"]),
                    "native_fps": np.float32(meta["native_fps"]),
                    "num_frames": np.int32(n),
                    "frames_jpeg": np.array(data["frames_jpeg"], dtype=object),
                    "flow_fwd": data["flow_fwd"],  # to the side file (jpeg_frames.flow_to_side_file)
                    "flow_bwd": data["flow_bwd"],
                    "size": np.asarray(data["flow_fwd"].shape[1:3], np.int32),
                    "event_frames": events.astype(np.int32),
                    **self._extra_values(item, meta),
                },
            )


@contextlib.contextmanager
def _uncompressed_array_record():
    """TFDS writes ArrayRecord with zstd:3, hard-coded. With the flow still in the records, reading a 300-frame
    112² video cost ~120 ms of decompression for ~1.2× less disk (JPEG and float16 flow barely compress); the
    JPEG-only records compress ≈ 1.2× (zlib level 1), so the real-video builders write uncompressed records
    (the reader takes the options from the file)."""
    from array_record.python import array_record_module
    from tensorflow_datasets.core import file_adapters

    adapter = file_adapters.ArrayRecordFileAdapter
    original = adapter.__dict__["write_examples"]

    def write_examples(cls, path, iterator):
        writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1,uncompressed")
        for _, serialized in iterator:
            writer.write(serialized)
        writer.close()

    adapter.write_examples = classmethod(write_examples)
    try:
        yield
    finally:
        adapter.write_examples = original


def build(builder: RealVideoBuilder) -> RealVideoBuilder:
    """Builds (if not yet built) and writes build_report.json / build_report.txt beside the dataset."""
    if builder.is_prepared():
        return builder
    with _uncompressed_array_record(), writing.shuffle_in_memory(builder.data_dir):
        builder.download_and_prepare(file_format="array_record")
    report = builder.report
    report["num_examples"] = {k: v.num_examples for k, v in builder.info.splits.items()}
    # The same key as the synthetic builder's report (`ta2net build` counts it): unreadable files, named.
    report["skipped"] = {split: [e["error"] for e in entries] for split, entries in report["corrupt"].items()}
    with open(os.path.join(builder.data_dir, "build_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    text = report_text(report)
    with open(os.path.join(builder.data_dir, "build_report.txt"), "w") as f:
        f.write(text)
    print(text.split("\n\n")[0])
    print(f"full report: {os.path.join(builder.data_dir, 'build_report.txt')}")
    return builder


def report_text(report: dict) -> str:
    """The readable summary: totals first, then every anomaly, missing id and skipped file."""
    anomalies = report["anomalies"]
    kinds: dict[str, int] = {}
    for a in anomalies:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    missing = sum(len(v) for v in report["missing"].values())
    corrupt = sum(len(v) for v in report["corrupt"].values())
    head = [
        f"{report['dataset']}: "
        + ", ".join(f"{s} {n}" for s, n in report.get("num_examples", {}).items())
        + f" examples; {missing} missing video(s), {corrupt} unreadable video(s) skipped, "
        f"{len(anomalies)} annotation anomalies"
        + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")" if kinds else "")
    ]
    lines = ["\n".join(head), f"manual_dir: {report['manual_dir']}\nannotations: {report['annotations_dir']}"]
    lines.append(
        "anomalies (file:line id [kind] what was done):\n" + "\n".join("  " + str(Anomaly(**a)) for a in anomalies)
        if anomalies
        else "anomalies: none"
    )
    for split, ids in report["missing"].items():
        if ids:
            lines.append(f"missing videos, {split} ({len(ids)}): " + " ".join(ids))
    if report.get("empty_splits"):
        lines.append("splits with no video, not written: " + ", ".join(report["empty_splits"]))
    for split, entries in report["corrupt"].items():
        for e in entries:
            lines.append(f"skipped ({split}) {e['id']}: {e['error']}")
    if report.get("unused_video_files"):
        lines.append("video files matching no annotation (first 50): " + " ".join(report["unused_video_files"]))
    return "\n\n".join(lines) + "\n"
