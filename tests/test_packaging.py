"""What `pip install ta2net-jax` gives a user: setup.py declares every package the code imports, and
`ta2net detect` with the shipped model runs without the training stack (TFDS, grain), whose imports cost it
time and which a bundle has no use for."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys

from conftest import REPO, realdata

from ta2net_jax.cli import main as cli

PACKAGES = ("ta2net_jax", "input_pipeline", "configs")
# Imported only inside the side environments that have requirements files of their own (requirements-beam.txt,
# requirements-onnx.txt), each behind a check that names the environment to make.
SIDE_ENVIRONMENTS = {"apache_beam", "jax2onnx", "onnxruntime"}
# Declared without a direct import (each found missing by running the commands from a wheel in an empty venv):
# the backend etils and orbax load for gs:// paths (input_pipeline/paths.py), a module TFDS's build imports on
# every Python but declares only below 3.9 (`ta2net build`), and jax.export's optional serializer (`ta2net
# export --format stablehlo`).
DECLARED_WITHOUT_IMPORT = {"gcsfs", "importlib-resources", "flatbuffers"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requires() -> set[str]:
    """The distribution names of setup.py's install_requires, read from its source (nothing is run)."""
    tree = ast.parse(open(os.path.join(REPO, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            requirements = ast.literal_eval(node.value)
            return {normalised(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}
    raise AssertionError("setup.py has no install_requires")


def imported_modules() -> dict[str, str]:
    """Top-level third-party module → one file of the packages that imports it (absolute imports only)."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                for node in ast.walk(ast.parse(open(path).read())):
                    if isinstance(node, ast.Import):
                        modules = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        modules = [node.module]
                    else:
                        continue
                    for module in modules:
                        found.setdefault(module.split(".")[0], os.path.relpath(path, REPO))
    return {m: f for m, f in found.items() if m not in sys.stdlib_module_names and m not in PACKAGES}


def test_setup_declares_every_imported_package_and_nothing_else():
    declared = install_requires()
    providers = importlib.metadata.packages_distributions()
    used = set()
    for module, where in sorted(imported_modules().items()):
        if module in SIDE_ENVIRONMENTS:
            continue
        assert module in providers, f"{where} imports {module!r}, which no installed distribution provides"
        names = {normalised(d) for d in providers[module]}
        assert names & declared, f"{where} imports {module!r} ({sorted(names)}), not in setup.py's install_requires"
        used |= names & declared
    assert declared - used == DECLARED_WITHOUT_IMPORT, f"declared, imported nowhere: {sorted(declared - used)}"


def test_the_shipped_bundle_states_its_input():
    from ta2net_jax.export import bundle

    for folder in (bundle.packaged_model_dir(), bundle.locator_dir(bundle.packaged_model_dir())):
        data = json.load(open(os.path.join(folder, "config.json")))["data"]
        assert (data["image_size"], data["flow_method"], data["crop_borders"]) == (64, "dis", True), folder


def test_detect_with_the_shipped_model_needs_neither_tfds_nor_grain():
    """The whole detection of a real clip in a Python where both cannot be imported."""
    clip = realdata("greatest_hits_condfoleygen", "hitting_metal.mp4")
    script = (
        "import sys\n"
        "sys.modules['tensorflow_datasets'] = None\n"  # `import` of a None entry raises ImportError
        "sys.modules['grain'] = None\n"
        "from ta2net_jax.detection.detect import detect\n"
        f"print(len(detect({clip!r})['events']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0


def test_a_missing_dependency_is_one_line_naming_the_package(monkeypatch, capsys):
    def lacks_opencv(args, overrides):
        raise ModuleNotFoundError("No module named 'cv2'", name="cv2")

    monkeypatch.setitem(cli.COMMANDS, "info", lacks_opencv)
    assert cli.main(["info", "--config", "configs/synthetic_small.py"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("ta2net: error: ")
    assert "'cv2'" in err and "opencv-contrib-python-headless" in err and "pip install ta2net-jax" in err


def test_documented_config_paths_work_from_any_folder(tmp_path, monkeypatch, capsys):
    """`--config configs/NAME.py` as the docs write it, from a folder without configs/ (a pip install): the
    installed package's config; a name that is not one lists those that are."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["info", "--config", "configs/synthetic_small.py:smoke"]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == "configs/synthetic_small.py:smoke"
    assert cli.main(["info", "--config", "configs/synthetic_smal.py"]) == 1
    err = capsys.readouterr().err
    assert "configs/synthetic_smal.py: no such config file" in err and "configs/synthetic_small.py" in err
    (tmp_path / "configs").mkdir()  # a file of the user's own beats the packaged one of the same name
    (tmp_path / "configs" / "synthetic_small.py").write_text(
        "from configs import synthetic_small as packaged\n\n\n"
        "def get_config(arg=None):\n    config = packaged.get_config(arg)\n    config.seed = 7\n    return config\n"
    )
    from ta2net_jax.config_utils import load_config

    assert load_config("configs/synthetic_small.py:smoke").seed == 7


def test_a_library_asking_for_an_optional_package_is_one_line(monkeypatch, capsys):
    def asks(args, overrides):  # what jax.export raised without flatbuffers
        raise ImportError("Please install 'flatbuffers' in order to use Exported serialization")

    monkeypatch.setitem(cli.COMMANDS, "info", asks)
    assert cli.main(["info", "--config", "configs/synthetic_small.py"]) == 1
    want = "ta2net: error: Please install 'flatbuffers' in order to use Exported serialization\n"
    assert capsys.readouterr().err == want
