"""The scripts of benchmarks/ (not a package) loaded by path, for the tests of their helpers and rows."""

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module, run from its file (its own sys.path set-up included)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(REPO, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
