"""Validation during training (`train.eval_every`): the tune split scored with the current parameters and the
metrics `ta2net eval` would report for them, the same on every process."""

from __future__ import annotations

import numpy as np
from flax import nnx

from ta2net_jax import distributed, mesh as mesh_lib, optim


class Validator:
    """Scores the validation split with the current parameters, on this process's devices only (a local
    mesh: no cross-process collective inside), each process its share of the videos; the per-video scores
    are then all-gathered and every process computes the same metrics (ta2net_jax.evaluation.evaluate's functions:
    threshold tuned on this split, events F1 at the tuned threshold)."""

    def __init__(self, config, options):
        self.config, self.options = config, options
        self.predictor = None  # inference.local_predictor, made at the first validation

    def __call__(self, graphdef, state) -> dict:
        return validate(self, graphdef, state)


def validate(validator: Validator, graphdef, state) -> dict:
    """{'val_event_f1_tol3', 'val_threshold', 'val_<metric>' …} of the state on `eval.tune_split`."""
    from ta2net_jax.evaluation.evaluate import detector_metrics, score_split, tune_eval_picking
    from ta2net_jax.inference import local_predictor

    config, cfg = validator.config, validator.config.eval
    model = optim.scored_model(graphdef, state)
    if validator.predictor is None:
        validator.predictor = local_predictor(model, config)
    else:  # the current parameters on this process's devices (a collective under fsdp)
        validator.predictor.state = mesh_lib.localize(nnx.state(model), validator.predictor.mesh)
    max_videos = validator.options["eval_max_videos"] or None
    videos = score_split(config, validator.predictor, cfg.tune_split, max_videos=max_videos, progress=False)
    validator.predictor.state = None  # the arrays may alias the train state, which the next step donates
    mine = [{k: v[k] for k in ("scores", "event_frames", "fps")} | {"id": str(v["id"])} for v in videos]
    everyone = sorted((v for part in distributed.allgather_objects(mine) for v in part), key=lambda v: v["id"])
    picking, _ = tune_eval_picking([(v["scores"], v["event_frames"], v["fps"]) for v in everyone], cfg)
    result = detector_metrics(everyone, "scores", picking)
    out = {"val_threshold": float(picking.threshold)}
    out.update(
        {
            f"val_{k}": float(v)
            for k, v in result.items()
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        }
    )
    return out
