"""Offline preparation of real videos: decode → (resample) → resize → optical flow → JPEG frames + flow.

One video becomes one folder `OUT/<key>/`:
    frames/000000.jpg …    N frames, H×W RGB JPEG (quality `jpeg_quality`)
    flow.npz               flow_fwd, flow_bwd: [N−1, H, W, 2] float16 (u, v) in pixels (input_pipeline/flow.py);
                           stored uncompressed (float16 flow barely compresses; reading it costs no CPU)
    meta.json              source file, native fps, output fps, frame counts, sizes, options, source_frames
                           (which native frames were kept), a variable-rate source's timestamps, seconds spent

Resumable: a video is written to `OUT/.<key>.partial-<pid>/` and renamed to `OUT/<key>/` when complete
(rename is atomic), so a kill leaves no half-written video and a re-run skips every finished folder.
Partial folders of dead processes are removed at the next start.

Frames are decoded with PyAV at the native frame rate (the original's behaviour) unless `fps` is set:
then output frame j is the native frame shown nearest to time j / fps (frames are selected, never blended,
so every output frame is a real frame; labels map the same way, `frame_times.map_frame_index`). A variable-frame-rate
source (input_pipeline/frame_times.py) is timed by its frames' timestamps there, and at its native rate its
flow is stored per unit interval, as `ta2net detect` scores it. Static black borders
(letterbox, pillarbox) are cropped first (`crop_borders`, input_pipeline/borders.py: what `ta2net detect`
does, so a model trained on prepared videos sees the picture as detect gives it; meta.json `borders`).
Frames are resized straight to size×size (aspect ratio not kept, as the original) and cut to `max_frames`
(the original's 300). Flow is estimated on the decoded frames before JPEG compression.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
import zipfile

import numpy as np

from input_pipeline import (
    beam_runner,
    flow as flow_lib,
    frame_times,
    packed_flow,
    paths,
    video as video_lib,
    worker_pool,
)


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    """size: output H = W in pixels; fps: None keeps the native rate; max_frames: cap after resampling;
    crop_borders: crop static black borders before the resize (input_pipeline/borders.py)."""

    size: int = 112
    flow_method: str = "dis"
    fps: float | None = None
    max_frames: int | None = 300
    jpeg_quality: int = 95
    crop_borders: bool = True

    def tag(self) -> str:
        """A folder name that differs whenever the prepared data would differ (folders prepared before borders
        were cropped have no `-crop`, so they are never taken for cropped ones)."""
        fps = "native" if self.fps is None else f"{self.fps:g}fps"
        cap = "all" if self.max_frames is None else f"max{self.max_frames}"
        crop = "-crop" if self.crop_borders else ""
        return f"{self.size}px-{self.flow_method}-{fps}-{cap}-q{self.jpeg_quality}{crop}"


@dataclasses.dataclass(frozen=True)
class Runner:
    """How `prepare_all` runs the per-video work: "local", a process pool of `workers`, or "beam", an Apache
    Beam pipeline with `beam_options` (pipeline flags; input_pipeline/beam_runner.py). Same outputs."""

    name: str = "local"
    beam_options: tuple[str, ...] = ()

    def __post_init__(self):
        if self.name not in beam_runner.RUNNERS:
            raise ValueError(f"unknown runner {self.name!r}; choose one of {beam_runner.RUNNERS}")


@dataclasses.dataclass
class PrepareSummary:
    prepared: list[str]  # keys done by this run
    reused: list[str]  # keys already finished before this run
    failed: dict[str, str]  # key -> one-line error naming the file
    seconds: float
    frames: int  # frames prepared by this run

    def text(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"prepared {len(self.prepared)} video(s) ({self.frames} frames, {self.seconds:.1f} s, "
            f"{rate:.0f} frames/s), {len(self.reused)} already done, {len(self.failed)} failed"
        ]
        lines += [f"  failed: {err}" for err in self.failed.values()]
        return "\n".join(lines)


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-#]*$")


def _check_key(key: str) -> str:
    if not _SAFE_KEY.match(key) or ".partial-" in key:
        raise ValueError(
            f"{key!r}: not usable as a folder name (letters, digits, _ - . # only; see video_files.folder_key)"
        )
    return key


def is_prepared(out_dir: str, key: str) -> bool:
    return paths.exists(paths.join(out_dir, key, "meta.json"))


def save_npz(path: str, *, compress: bool = False, **arrays: np.ndarray) -> None:
    """`np.savez` (or `np.savez_compressed`; loadable by np.load) with a fixed member timestamp: numpy stamps
    each member with the current time, so two preparations of the same video differed in those bytes; fixed,
    the file depends on the arrays only (the local and Beam runners' outputs compare byte for byte)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method, allowZip64=True) as z:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


@dataclasses.dataclass
class DecodedClip:
    """A video decoded, cropped, resized and resampled for `prepare`, before its flow: `frames` [M, S, S, 3]
    uint8 (the output frames), `keep` [M] which native frames they are, `decoded` the decoder's result (native
    rate, timestamps, borders), `seconds` spent decoding."""

    path: str
    frames: np.ndarray
    keep: np.ndarray
    decoded: video_lib.DecodedVideo
    seconds: float


def decode_clip(path: str, options: PrepareOptions) -> DecodedClip:
    """The first half of `prepare_video`: everything before the flow. Raises video.VideoReadError naming `path`."""
    t0 = time.perf_counter()
    native_cap = options.max_frames if options.fps is None else None  # stop decoding early when we can
    size = (options.size, options.size)
    decoded = video_lib.read_video(path, size=size, max_frames=native_cap, crop_borders=options.crop_borders)
    keep = frame_times.resample_indices(len(decoded.frames), decoded.fps, options.fps, decoded.times_s)
    if options.max_frames is not None:
        keep = keep[: options.max_frames]
    frames = decoded.frames[keep]
    video_lib.check_frame_count(path, len(frames))
    return DecodedClip(path, frames, keep, decoded, time.perf_counter() - t0)


def prepare_video(path: str, out_dir: str, key: str, options: PrepareOptions) -> dict:
    """Prepares one video into `out_dir/key/` (atomically); returns its meta dict.

    `path`: a video file or a `gs://` URL. Raises video.VideoReadError ("path: problem", naming `path`) for
    unreadable, corrupt or too-short videos.
    """
    _check_key(key)
    clip = decode_clip(path, options)
    t0 = time.perf_counter()
    fwd, bwd = flow_lib.estimate_flow(clip.frames, options.flow_method)
    return write_clip(clip, fwd, bwd, out_dir, key, options, spent_s=clip.seconds + time.perf_counter() - t0)


def write_clip(
    clip: DecodedClip, fwd: np.ndarray, bwd: np.ndarray, out_dir: str, key: str, options: PrepareOptions, spent_s: float
) -> dict:
    """The second half of `prepare_video`: `clip` with its raw flow (fwd, bwd [M-1, S, S, 2] float16 px, as
    flow.estimate_flow gives them) written into `out_dir/key/` (atomically); returns its meta dict.
    `spent_s`: seconds spent on the clip before this (meta.json `seconds` adds the writing)."""
    import cv2

    t0 = time.perf_counter()
    path, frames, keep, decoded = clip.path, clip.frames, clip.keep, clip.decoded
    # At the native rate a variable-rate source's flow is put per unit interval, as `ta2net detect` puts it;
    # resampled, frame j is the one shown nearest to j / fps, so the output is on a uniform clock already.
    native_times = None if options.fps is not None or decoded.times_s is None else decoded.times_s[keep]
    fwd, bwd = frame_times.per_unit_interval(fwd, bwd, native_times, decoded.fps)
    tmp = os.path.join(out_dir, f".{key}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "frames"))
    try:
        params = [cv2.IMWRITE_JPEG_QUALITY, int(options.jpeg_quality)]
        for i, rgb in enumerate(frames):
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise RuntimeError(f"{path}: JPEG encoding of frame {i} failed")
            with open(os.path.join(tmp, "frames", f"{i:06d}.jpg"), "wb") as f:
                f.write(buf.tobytes())
        save_npz(os.path.join(tmp, "flow.npz"), flow_fwd=fwd, flow_bwd=bwd)
        meta = {
            "key": key,
            "name": os.path.basename(path),
            "source": paths.resolve(path),
            "native_fps": decoded.fps,
            "fps": decoded.fps if options.fps is None else float(options.fps),
            "num_frames": int(len(frames)),
            "native_frames_decoded": int(len(decoded.frames)),
            "source_size": list(decoded.source_size),
            "borders": decoded.borders.to_dict(),  # cropped before the resize (input_pipeline/borders.py)
            "size": [options.size, options.size],
            "source_frames": keep.tolist() if options.fps is not None else None,
            # a variable-rate source: its frames' timestamps (labels map to output frames by them) and whether
            # the stored flow is per unit interval (input_pipeline/frame_times.py)
            **frame_times.describe(decoded.times_s, decoded.fps),
            "source_times_s": None if decoded.times_s is None else np.round(decoded.times_s, 6).tolist(),
            "flow_per_unit_interval": native_times is not None,
            "options": dataclasses.asdict(options),
            "seconds": round(spent_s + time.perf_counter() - t0, 3),
        }
        with open(os.path.join(tmp, "meta.json"), "w") as f:  # last: marks the folder complete
            json.dump(meta, f)
        final = os.path.join(out_dir, key)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same video first: keep theirs
            if not is_prepared(out_dir, key):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def load_prepared(out_dir: str, key: str) -> dict:
    """A prepared video: {"meta", "frames_jpeg" (list of N JPEG bytes), "flow_fwd", "flow_bwd"}."""
    folder = os.path.join(out_dir, key)
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    jpegs = []
    for i in range(meta["num_frames"]):
        with open(os.path.join(folder, "frames", f"{i:06d}.jpg"), "rb") as f:
            jpegs.append(f.read())
    with np.load(os.path.join(folder, "flow.npz")) as z:
        return {"meta": meta, "frames_jpeg": jpegs, "flow_fwd": z["flow_fwd"], "flow_bwd": z["flow_bwd"]}


def _remove_dead_partials(out_dir: str) -> None:
    for name in os.listdir(out_dir):
        m = re.match(r"^\..+\.partial-(\d+)$", name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)  # still running: another prepare owns it
        except ProcessLookupError:
            shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
        except PermissionError:
            pass


def _job(args):
    path, out_dir, key, options = args
    try:
        meta = prepare_video(path, out_dir, key, options)
        return key, meta["num_frames"], None
    except video_lib.VideoReadError as err:
        return key, 0, str(err)


def _decode_job(job):
    path, out_dir, key, options = job
    try:
        return job, decode_clip(path, options), None
    except video_lib.VideoReadError as err:
        return job, None, str(err)


def _frames_of(decode_result) -> np.ndarray | None:
    return None if decode_result[1] is None else decode_result[1].frames


def _packed_jobs(todo, run):
    """`_job`'s results for a flow method of packed_flow.ON_DEVICE: the videos decoded by `run`
    (worker_pool.ordered_map's), their flow estimated in this process, several videos' pairs per device call,
    each written here."""
    for (job, clip, error), fwd, bwd, flow_s in packed_flow.with_flow(run(_decode_job, todo), _frames_of):
        path, out_dir, key, options = job
        if error:
            yield key, 0, error
            continue
        meta = write_clip(clip, fwd, bwd, out_dir, key, options, spent_s=clip.seconds + flow_s)
        yield key, meta["num_frames"], None


def beam_job(job: list) -> list:
    """One video for the Beam runner: [path, out_dir, key, PrepareOptions as a dict] → [key, frames, error or
    None], as `_job`. A video already prepared (a rerun, a bundle Beam retries) is not redone. A `gs://`
    out_dir (distributed runners: workers share no disk): prepared into a local temporary folder, then
    uploaded with meta.json last, so the object store never holds a folder that looks complete but is not."""
    path, out_dir, key, options = job
    worker_pool.one_opencv_thread()
    if is_prepared(out_dir, key):
        return [key, json.loads(paths.read_text(paths.join(out_dir, key, "meta.json")))["num_frames"], None]
    options = PrepareOptions(**options)
    if not paths.is_remote(out_dir):
        return list(_job((path, out_dir, key, options)))
    with tempfile.TemporaryDirectory(prefix="ta2net-prepare-") as tmp:
        key, frames, error = _job((path, tmp, key, options))
        if error is None:
            paths.upload_tree(os.path.join(tmp, key), paths.join(out_dir, key), last=("meta.json",))
    return [key, frames, error]


def prepare_all(
    jobs: list[tuple[str, str]],
    out_dir: str,
    options: PrepareOptions,
    *,
    workers: int = 1,
    desc: str = "prepare",
    progress: bool = True,
    runner: Runner | None = None,
) -> PrepareSummary:
    """Prepares every (key, video path) not yet done, in `workers` processes (or a Beam pipeline, `runner`),
    with a tqdm bar and ETA.

    A video that cannot be read is skipped and named in `summary.failed` (and printed); the run goes on.
    `out_dir` may be a `gs://` URL with the Beam runner (its workers upload each video).
    """
    runner = runner or Runner()

    if options.flow_method not in flow_lib.FLOW_METHODS:
        raise ValueError(f"unknown flow method {options.flow_method!r}; choose one of {flow_lib.FLOW_METHODS}")
    keys = [_check_key(k) for k, _ in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{out_dir}: duplicate video keys in one prepare run")
    if paths.is_remote(out_dir):
        if runner.name != "beam":
            raise ValueError(f"{out_dir}: the local runner prepares into a local folder (the CLI uploads it)")
        return _prepare_jobs(jobs, keys, out_dir, options, workers, desc, progress, runner)
    existed = os.path.abspath(out_dir)
    while not os.path.exists(existed):
        existed = os.path.dirname(existed)
    os.makedirs(out_dir, exist_ok=True)
    try:
        return _prepare_jobs(jobs, keys, out_dir, options, workers, desc, progress, runner)
    finally:  # nothing prepared (every video failed, or an error): no empty folders left behind
        _remove_empty_up_to(out_dir, existed)


def _remove_empty_up_to(folder: str, keep: str) -> None:
    """Removes `folder` and its parents while they are empty, stopping at `keep` (which existed before)."""
    folder = os.path.abspath(folder)
    while folder != keep and folder.startswith(keep + os.sep):
        try:
            os.rmdir(folder)
        except OSError:  # not empty (or gone): stop
            return
        folder = os.path.dirname(folder)


def _prepare_jobs(jobs, keys, out_dir, options, workers, desc, progress, runner) -> PrepareSummary:
    from input_pipeline.progress import tqdm, write

    if not paths.is_remote(out_dir):
        _remove_dead_partials(out_dir)
    reused = [k for k in keys if is_prepared(out_dir, k)]
    todo = [(path, out_dir, key, options) for key, path in jobs if not is_prepared(out_dir, key)]
    t0 = time.perf_counter()
    prepared, failed, frames = [], {}, 0
    bar = tqdm(
        total=len(todo),
        desc=f"{desc} ({options.flow_method} flow, {options.size}px)",
        unit="video",
        disable=not (progress and todo),
    )
    beam = runner.name == "beam"
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        if beam:  # the whole pipeline runs first; the bar then counts its results
            beam_jobs = [[path, out, key, dataclasses.asdict(opts)] for path, out, key, opts in todo]
            results = beam_runner.run("input_pipeline.prepare:beam_job", beam_jobs, runner.beam_options)
        else:
            run = stack.enter_context(worker_pool.ordered_map(workers))  # closed before the bar
            on_device = options.flow_method in packed_flow.ON_DEVICE
            results = _packed_jobs(todo, run) if on_device else run(_job, todo)
        for key, n, error in results:
            if error:
                failed[key] = error
                write(f"skipped: {error}")
            else:
                prepared.append(key)
                frames += n
            bar.update(1)
    return PrepareSummary(prepared, reused, failed, time.perf_counter() - t0, frames)
