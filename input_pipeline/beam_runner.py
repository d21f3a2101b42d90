"""Runs per-video work as an Apache Beam pipeline: `ta2net prepare|build --runner beam`.

The work itself is the local runner's: a module-level function `fn(job) -> result` (named "module:function",
imported on the workers) applied to every job, each job and result JSON-serialisable. The pipeline is

    Create([(i, job), ...]) → Reshuffle (spreads the jobs over the workers) → ParDo(fn) → WriteToText

and the driver reads the results back in job order. The function owns idempotency and per-job failures (it
returns an error line naming the file instead of raising), so the Beam and local runners report alike; an
exception that escapes it fails the pipeline (Beam retries the bundle first on distributed runners, which
the functions tolerate: every output is written atomically and a finished one is skipped).

Apache Beam pins numpy < 2.5, protobuf < 7 and pyarrow < 26, older than this project's environment
(docs/scaling.md §6), so Beam lives in its own environment, `.venv-beam` (`make beam-env`). When this
interpreter has no `apache_beam`, the pipeline runs in a subprocess of `.venv-beam/bin/python` (the repo on
PYTHONPATH), which writes the results file that this process reads.

Where the results go: a local temporary folder, or `<temp_location>/ta2net-results-<id>` when the pipeline
options give `--temp_location` (distributed runners: the workers cannot write to this machine's disk).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid

from input_pipeline import paths

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_VENV = os.path.join(REPO, ".venv-beam")
PYTHON_ENV = "TA2NET_BEAM_PYTHON"  # another interpreter with apache-beam and the project's video libraries
RUNNERS = ("local", "beam")


class BeamEnvMissingError(FileNotFoundError):
    """`--runner beam` without apache-beam here and without the `.venv-beam` environment."""


def beam_python() -> str:
    """The interpreter the pipeline runs in when this one has no apache_beam."""
    return os.environ.get(PYTHON_ENV) or os.path.join(BEAM_VENV, "bin", "python")


def beam_importable() -> bool:
    return importlib.util.find_spec("apache_beam") is not None


def split_options(options) -> list[str]:
    """`--beam_pipeline_options "--runner=DirectRunner --direct_num_workers=2"` → a list of flags."""
    if options is None:
        return []
    if isinstance(options, str):
        return shlex.split(options)
    return [str(o) for o in options]


def _results_prefix(beam_options: list[str], local_dir: str) -> str:
    for flag in beam_options:
        if flag.startswith("--temp_location="):
            return paths.join(flag.split("=", 1)[1], f"ta2net-results-{uuid.uuid4().hex}", "results.jsonl")
    return os.path.join(local_dir, "results.jsonl")


def run(fn: str, jobs: list, beam_options=None) -> list:
    """`[fn(job) for job in jobs]`, computed by a Beam pipeline with `beam_options` (flags, or one string);
    results in job order. Raises BeamEnvMissingError (naming `make beam-env`) when Beam is not available,
    RuntimeError when the pipeline fails."""
    options = split_options(beam_options)
    if not jobs:
        return []
    with tempfile.TemporaryDirectory(prefix="ta2net-beam-") as tmp:
        results_path = _results_prefix(options, tmp)
        request = {"fn": fn, "jobs": jobs, "beam_options": options, "results": results_path}
        if beam_importable():
            _run_pipeline(request)
        else:
            _run_in_beam_env(request, tmp)
        by_index = dict(json.loads(line) for line in paths.read_text(results_path).splitlines() if line)
        if paths.is_remote(results_path):
            paths.remove(results_path)
    missing = [i for i in range(len(jobs)) if i not in by_index]
    if missing:
        raise RuntimeError(f"the Beam pipeline returned no result for {len(missing)} of {len(jobs)} jobs")
    return [by_index[i] for i in range(len(jobs))]


def _run_in_beam_env(request: dict, tmp: str) -> None:
    python = beam_python()
    if not os.path.exists(python):
        raise BeamEnvMissingError(
            f"{python}: the Apache Beam environment is missing; create it with `make beam-env` "
            "(Beam pins numpy<2.5, protobuf<7 and pyarrow<26, so it has its own environment, docs/scaling.md §6)"
        )
    request_path = os.path.join(tmp, "request.json")
    with open(request_path, "w") as f:
        json.dump(request, f)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Beam's own log lines (worker start-up, warnings) go to our stderr as they come: a long distributed job
    # shows its progress; only the exit status decides success.
    proc = subprocess.run([python, "-m", "input_pipeline.beam_runner", request_path], env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"the Beam pipeline failed (exit status {proc.returncode}; its log is above)")


def _run_pipeline(request: dict) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    fn = request["fn"]

    class CallFn(beam.DoFn):
        """Applies `fn` (imported once per worker) to (index, job); emits one JSON line [index, result]."""

        def setup(self):
            module, name = fn.split(":")
            self._fn = getattr(importlib.import_module(module), name)

        def process(self, item):
            index, job = item
            yield json.dumps([index, self._fn(job)])

    with beam.Pipeline(options=PipelineOptions(request["beam_options"])) as pipeline:
        _ = (
            pipeline
            | "jobs" >> beam.Create(list(enumerate(request["jobs"])))
            | "spread" >> beam.Reshuffle()
            | "work" >> beam.ParDo(CallFn())
            | "results" >> beam.io.WriteToText(request["results"], shard_name_template="")
        )


def main(argv: list[str]) -> int:
    """`python -m input_pipeline.beam_runner REQUEST.json`: the pipeline, in the Beam environment."""
    with open(argv[0]) as f:
        _run_pipeline(json.load(f))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
