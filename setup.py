"""ta2net-jax: TA²Net (timing audible actions via inflection flow) in JAX / Flax NNX.

Install for development with `make venv` (Python >= 3.12, pinned requirements.txt), or
`pip install -r requirements.txt && pip install -e .`; `pip install .` alone installs every dependency at
its floor or later.
"""

from setuptools import find_packages, setup

setup(
    name="ta2net-jax",
    version="0.1.0",
    description="TA²Net in JAX/Flax NNX: timing audible actions from video via inflection flow.",
    python_requires=">=3.12",
    packages=find_packages(
        include=["ta2net_jax", "ta2net_jax.*", "input_pipeline", "input_pipeline.*", "configs", "configs.*"]
    ),
    # Every package the code imports, so that `pip install ta2net-jax` gives working commands (`ta2net detect
    # VIDEO` first of all; tests/test_packaging.py checks the list against the imports). Versions are pinned in
    # requirements.txt; these are floors: jax / flax are the oldest the suite passes on (what the GPU
    # machines carry), the rest the versions it was tested with where an API we use is recent. The PyTorch,
    # ONNX and Apache Beam sides have environments of their own (requirements-{torch,onnx,beam}.txt).
    install_requires=[
        "jax>=0.11.2",
        "flax>=0.12.10",
        "optax>=0.2.8",
        "orbax-checkpoint>=0.12.4",
        "numpy",
        "ml_dtypes",
        "grain>=0.2.18",
        "tensorflow-datasets>=4.9.10",
        "array_record>=0.8",
        "ml-collections>=1.1.0",
        "etils>=1.15",
        "absl-py",
        "opencv-contrib-python-headless>=5.0.0",
        "av>=18.1.0",
        "safetensors>=0.4",
        "mir_eval>=0.8.2",
        "librosa>=0.11",
        "matplotlib",
        "pillow",
        "tqdm",
        "tensorboardX>=2.6",
        "fsspec",
        "gcsfs",  # etils' and orbax's backend for gs:// paths (input_pipeline/paths.py)
        "importlib_resources",  # TFDS's build imports it on every Python, declares it only below 3.9
        "flatbuffers",  # jax.export's serialization (`ta2net export --format stablehlo`), optional in jax
    ],
    # The default model that `ta2net detect VIDEO` runs (docs/default_model.md).
    package_data={"ta2net_jax": ["detection/default_model/*", "detection/default_model/locator/*"]},
    entry_points={"console_scripts": ["ta2net=ta2net_jax.cli.main:main"]},
)
