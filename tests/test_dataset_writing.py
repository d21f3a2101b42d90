"""TFDS builds without TensorFlow: the shuffler's memory budget and the error for a split that exceeds it."""

import pytest
from tensorflow_datasets.core import shuffle

from input_pipeline.datasets import writing


def test_shuffle_budget_is_raised_then_restored():
    before = shuffle.MAX_MEM_BUFFER_SIZE
    with writing.shuffle_in_memory("/data/x"):
        assert shuffle.MAX_MEM_BUFFER_SIZE >= before
        assert shuffle.MAX_MEM_BUFFER_SIZE >= int(0.5 * writing.available_memory_bytes())
    assert shuffle.MAX_MEM_BUFFER_SIZE == before


def test_spill_to_tensorflow_becomes_an_error_naming_the_dataset():
    with pytest.raises(writing.SplitTooLargeError, match="/data/x.*larger than"):
        with writing.shuffle_in_memory("/data/x"):
            raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
    with pytest.raises(ModuleNotFoundError, match="cv3"):  # other missing modules pass through unchanged
        with writing.shuffle_in_memory("/data/x"):
            raise ModuleNotFoundError("No module named 'cv3'", name="cv3")
