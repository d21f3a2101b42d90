"""ta2net-jax: TA²Net (timing audible actions from video via inflection flow) in JAX / Flax NNX.

The data flow, one module per stage: video → synthetic → flow → (input_pipeline) → inflection → model →
losses → train → checkpoint → inference / evaluate → detect. See README.md.
"""
