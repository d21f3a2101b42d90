"""TA2Net shapes and parameter names (scenic unloc style), per head and for the whole model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ta2net_jax.inflection import flow_channels
from ta2net_jax.model import build_model
from ta2net_jax.model.attention import CrossModalAttention
from ta2net_jax.model.resnet import ResEncoder
from ta2net_jax.model.spatial_head import Disentangler
from ta2net_jax.model.temporal_head import SimilarityDecoder, sinusoidal_encoding


def param_names(module) -> set[str]:
    return {".".join(str(p) for p in path) for path, _ in nnx.to_flat_state(nnx.state(module, nnx.Param))}


def test_bottleneck_trunk_is_resnet50_up_to_layer3():
    enc = ResEncoder(3, rngs=nnx.Rngs(0))  # paper defaults
    names = param_names(enc)
    assert "conv1.kernel" in names and "proj.kernel" in names and "proj_bn.scale" in names
    # torchvision resnet50 layer1..3 have 3, 4, 6 bottlenecks; layer4 is not built.
    for layer, depth in enumerate((3, 4, 6)):
        assert f"layers.{layer}.{depth - 1}.conv3.kernel" in names
        assert f"layers.{layer}.{depth}.conv1.kernel" not in names
    assert not any(n.startswith("layers.3") for n in names)
    assert nnx.state(enc, nnx.Param)["proj"]["kernel"][...].shape == (1, 1, 1024, 256)
    assert "proj.bias" not in names  # 1×1 projection has no bias
    graphdef, state = nnx.split(enc)
    out = jax.eval_shape(
        lambda st, x: nnx.merge(graphdef, st)(x), state, jax.ShapeDtypeStruct((2, 3, 112, 112, 3), jnp.float32)
    )
    assert out.shape == (2, 3, 7, 7, 256)  # 256×7×7 per 112² frame


def test_cross_modal_attention_shapes_and_names():
    attn = CrossModalAttention(16, 32, 8, rngs=nnx.Rngs(0))
    assert param_names(attn) == {f"{p}.{k}" for p in ("query", "key", "value") for k in ("kernel", "bias")}
    out = attn(jnp.ones((2, 3, 4, 4, 16)), jnp.ones((2, 3, 4, 4, 32)))
    assert out.shape == (2, 3, 4, 4, 16)


def test_motion_valued_attention_option():
    attn = CrossModalAttention(16, 32, 8, value_source="motion", rngs=nnx.Rngs(0))
    assert attn.value.kernel[...].shape == (1, 1, 32, 16)  # values from the 2P motion features
    assert attn(jnp.ones((2, 3, 4, 4, 16)), jnp.ones((2, 3, 4, 4, 32))).shape == (2, 3, 4, 4, 16)
    with pytest.raises(ValueError, match="value_source"):
        CrossModalAttention(16, 32, 8, value_source="audio", rngs=nnx.Rngs(0))


def test_disentangler_maps_and_area_normalisation():
    head = Disentangler(6, rngs=nnx.Rngs(0))
    assert param_names(head) == {"activation_head.kernel", "bn_head.scale", "bn_head.bias"}
    x = jax.random.normal(jax.random.key(0), (5, 3, 3, 6))
    fg, bg, m = head(x)
    assert fg.shape == bg.shape == (5, 6) and m.shape == (5, 3, 3)
    # fg + bg = mean over positions of x, whatever the map (divided by the area, not by Σm).
    np.testing.assert_allclose(fg + bg, x.mean(axis=(1, 2)), atol=1e-5)


def test_similarity_decoder_shapes_names_and_clip_length():
    dec = SimilarityDecoder(
        12, num_frames=8, conv_features=16, sim_features=4, d_model=16, ffn_features=16, rngs=nnx.Rngs(0)
    )
    names = param_names(dec)
    for expected in (
        "conv3d.kernel",
        "bn3d.scale",
        "similarity.query.kernel",
        "sim_conv.kernel",
        "input_projection.kernel",
        "input_norm.scale",
        "transformer.self_attn.query.kernel",
        "transformer.norm2.bias",
        "final_norm.scale",
        "prediction.fc3.kernel",
    ):
        assert expected in names
    assert not any("value" in n for n in names if n.startswith("similarity."))  # v projection unused
    assert nnx.state(dec, nnx.Param)["input_projection"]["kernel"][...].shape == (8 * 4, 16)
    assert nnx.state(dec, nnx.Param)["conv3d"]["kernel"][...].shape == (3, 3, 3, 12, 16)
    dec.eval()
    assert dec(jnp.ones((2, 8, 3, 3, 12))).shape == (2, 8, 2)
    with pytest.raises(ValueError, match="T=8"):
        dec(jnp.ones((2, 6, 3, 3, 12)))


def test_position_encoding_is_sin_cos():
    pe = sinusoidal_encoding(5, 4)
    np.testing.assert_allclose(pe[3], [np.sin(3), np.cos(3), np.sin(3 / 100), np.cos(3 / 100)], rtol=1e-6)


def test_ta2net_outputs_and_module_names(smoke_config):
    model = build_model(smoke_config)
    top = {n.split(".")[0] for n in param_names(model)}
    assert top == {"video_net", "flow_net", "d2f_net", "v2f", "v2df", "sim_decoder", "disent"}
    b, t, s = 2, smoke_config.model.num_frames, 32
    c = flow_channels(smoke_config.inflection.mode)  # channels per half: 3 (colour) or 2 (raw)
    out = model(jnp.zeros((b, t, s, s, 3)), jnp.zeros((b, t, s, s, 2 * c)), jnp.zeros((b, t, s, s, 2 * c)))
    p = smoke_config.model.proj_features
    assert out["logits"].shape == (b, t, 2)
    assert out["fg"].shape == out["bg"].shape == (b, t, 3 * p)
    assert out["source_map"].shape == (b, t, s // 16, s // 16)


def test_trunk_strides_set_the_map_resolution_not_the_parameters(smoke_config):
    """model.trunk.strides (1, 2, 1) stops the trunks at H/8: a map twice as fine, with every parameter of
    the /16 model's shape, so a /16 run initialises a /8 one (configs/default_detector.py's two stages)."""
    fine = smoke_config.copy_and_resolve_references()
    fine.model.trunk.strides = (1, 2, 1)
    coarse_model, fine_model = build_model(smoke_config), build_model(fine)
    shapes = lambda m: jax.tree.map(lambda x: x.shape, nnx.state(m, nnx.Param))  # noqa: E731
    assert shapes(coarse_model) == shapes(fine_model)
    b, t, s = 1, smoke_config.model.num_frames, 32
    c = flow_channels(smoke_config.inflection.mode)
    out = fine_model(jnp.zeros((b, t, s, s, 3)), jnp.zeros((b, t, s, s, 2 * c)), jnp.zeros((b, t, s, s, 2 * c)))
    assert out["source_map"].shape == (b, t, s // 8, s // 8)
    assert out["logits"].shape == (b, t, 2)


def test_shared_flow_trunk_updates_batch_stats_once_per_half(smoke_config):
    """The flow trunk runs twice per step (forward and backward half), each call with its own batch
    statistics, so its running mean moves twice: m ← 0.9·m + 0.1·μ_fwd, then m ← 0.9·m + 0.1·μ_bwd."""
    model = build_model(smoke_config)
    s, t = 32, smoke_config.model.num_frames
    c = flow_channels(smoke_config.inflection.mode)
    rng = np.random.default_rng(0)
    motion = jnp.asarray(rng.normal(size=(1, t, s, s, 2 * c)), jnp.float32)
    model(jnp.zeros((1, t, s, s, 3)), motion, jnp.zeros((1, t, s, s, 2 * c)))
    conv1 = model.flow_net.conv1
    mu_fwd = conv1(motion[0, ..., :c]).mean(axis=(0, 1, 2))
    mu_bwd = conv1(motion[0, ..., c:]).mean(axis=(0, 1, 2))
    running = nnx.state(model.flow_net.bn1, nnx.BatchStat)["mean"][...]
    np.testing.assert_allclose(running, 0.9 * 0.1 * mu_fwd + 0.1 * mu_bwd, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("axis_type", [jax.sharding.AxisType.Auto, jax.sharding.AxisType.Explicit])
def test_forward_on_sharded_batch_matches_one_device(smoke_config, axis_type):
    """The model runs on a batch sharded over 4 devices under both mesh axis types, with the same outputs."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    model = build_model(smoke_config)
    model.eval()
    graphdef, state = nnx.split(model)
    c = 2 * flow_channels(smoke_config.inflection.mode)
    rng = np.random.default_rng(0)
    t = smoke_config.model.num_frames
    inputs = [jnp.asarray(rng.uniform(size=(4, t, 32, 32, ch)), jnp.float32) for ch in (3, c, c)]
    forward = jax.jit(lambda st, *x: nnx.merge(graphdef, st)(*x)["logits"])
    expected = forward(state, *inputs)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        sharded = [jax.device_put(x, NamedSharding(mesh, P("data"))) for x in inputs]
        got = forward(jax.device_put(state, NamedSharding(mesh, P())), *sharded)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-5)
