"""ta2net-jax: TA²Net (timing audible actions via inflection flow) in JAX / Flax NNX.

Install for development with `make venv` (Python >= 3.12, pinned requirements.txt), or
`pip install -r requirements.txt && pip install -e .`.
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
    # Versions are pinned in requirements.txt; these are the floors the code is written against
    # (the GPU machines carry jax 0.11.2 / flax 0.12.10 without grain, tfds or ml_collections).
    install_requires=[
        "jax>=0.11.2",
        "flax>=0.12.10",
        "optax>=0.2.8",
        "orbax-checkpoint>=0.12.4",
        "numpy",
    ],
    extras_require={
        "data": [
            "grain>=0.2.18",
            "tensorflow-datasets>=4.9.10",
            "ml-collections>=1.1.0",
            "opencv-contrib-python-headless>=5.0.0",
            "av>=18.1.0",
            "mir_eval>=0.8.2",
            "matplotlib",
            "tqdm",
        ],
    },
    # The default model that `ta2net detect VIDEO` runs (docs/default_model.md).
    package_data={"ta2net_jax": ["detection/default_model/*", "detection/default_model/locator/*"]},
    entry_points={"console_scripts": ["ta2net=ta2net_jax.cli.main:main"]},
)
