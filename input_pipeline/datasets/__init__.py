"""TFDS dataset builders (ArrayRecord, no TensorFlow), one module per dataset family.

Which datasets exist, and what input a run on each takes, is answered by `input_pipeline.registry`.
"""
