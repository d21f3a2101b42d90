"""TFDS builders that survive pickling into grain's worker processes (`data.worker_count > 0`).

TFDS pickles a builder as the keyword arguments it was made with and calls the constructor again with them on
the other side. A builder made with one of its class's registered `BUILDER_CONFIGS` objects then comes back
with an equal *copy* of that object, which TFDS refuses ("Cannot name a custom BuilderConfig the same as an
available BuilderConfig"): every grain worker process failed on its first record. Pickled by name, the copy
finds the registered object again. A derived config (another flow estimator, option overrides) has a name of
its own, is not registered, and pickles as it is.
"""

from __future__ import annotations


class PickledByConfigName:
    """Mixin for a `tfds.core.DatasetBuilder` subclass (list it first): a registered config pickles as its name."""

    def __getstate__(self):
        state = super().__getstate__()
        original = dict(state["_original_state"])
        config = original.get("config")
        if any(config is registered for registered in self.BUILDER_CONFIGS):
            original["config"] = config.name
        return {**state, "_original_state": original}
