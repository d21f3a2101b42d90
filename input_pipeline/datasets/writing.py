"""How the TFDS builders write ArrayRecord without TensorFlow.

TFDS's generator-based writer passes every split through its `Shuffler`, which keeps up to 1 GiB in memory and
past that spills to temporary bucket files through `tf.io.gfile`, i.e. TensorFlow, which this project does
not install. A split of generator v2 at 64 px is ≈ 4.5 MB per video (3.2 GB for `v2_64`'s 720 training
videos), so the 1 GiB default broke the build. `shuffle_in_memory` raises the shuffler's memory budget to
75 % of the memory available when the build starts; a split larger than that fails with an error that says
so instead of TensorFlow's import error.
"""

from __future__ import annotations

import contextlib
import os

MEMORY_FRACTION = 0.75


def available_memory_bytes() -> int:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class SplitTooLargeError(ValueError):
    """A split does not fit in the memory the TFDS shuffler may use (a user-facing error: `ta2net build` prints it
    as one line)."""


@contextlib.contextmanager
def shuffle_in_memory(dataset_dir: str):
    from tensorflow_datasets.core import shuffle

    budget = int(MEMORY_FRACTION * available_memory_bytes())
    original = shuffle.MAX_MEM_BUFFER_SIZE
    shuffle.MAX_MEM_BUFFER_SIZE = max(original, budget)
    try:
        yield
    except ModuleNotFoundError as err:
        if err.name != "tensorflow":
            raise
        raise SplitTooLargeError(
            f"{dataset_dir}: a split is larger than the {budget / 2**30:.1f} GiB of memory the TFDS shuffler may "
            "use here (past that it spills through TensorFlow, which is not installed); build on a machine with "
            "more memory or split the dataset into smaller builder configs"
        ) from None
    finally:
        shuffle.MAX_MEM_BUFFER_SIZE = original
