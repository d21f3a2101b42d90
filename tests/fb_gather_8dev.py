"""8-device check of `loss.fb_gather` (run by tests/test_losses.py in a fresh process, since the number
of fake CPU devices is fixed at backend start): L_fb and the full ta2net_loss ("audible_frame" sampling)
with "shard_map" and "gspmd" equal the single-device values, loss and gradients, on Auto and Explicit
meshes. Prints "OK 8 devices" on success."""

import jax

jax.config.update("jax_num_cpu_devices", 8)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P  # noqa: E402

from configs.common import paper_loss  # noqa: E402
from ta2net_jax import losses  # noqa: E402


def assert_close(got, want):
    loss, grads = got
    ref_loss, ref_grads = want
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-7)


def main():
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(8)
    b, t, d = 16, 6, 5  # 2 clips per device
    outputs = {
        "logits": rng.normal(size=(b, t, 2)),
        "fg": rng.normal(size=(b, t, d)) + 0.5,
        "bg": rng.normal(size=(b, t, d)),
        "source_map": rng.uniform(size=(b, t, 2, 2)),
    }
    outputs["fg"][9] = outputs["fg"][2]  # duplicates across devices: ties at the clamp
    outputs = {k: jnp.asarray(v, jnp.float32) for k, v in outputs.items()}
    labels = jnp.asarray(rng.uniform(size=(b, t)) > 0.6, jnp.int32)
    key = jax.random.key(5)
    fg, bg = outputs["fg"][:, 0], outputs["bg"][:, 0]

    def fb(fn):
        return jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))

    def total(gather):
        cfg = paper_loss()
        cfg.fb_gather = gather
        return jax.jit(jax.value_and_grad(lambda o, y: losses.ta2net_loss(o, y, key, cfg)[0]))

    ref_fb = fb(losses.foreground_background_loss)(fg, bg)
    ref_total = total("gspmd")(outputs, labels)
    for axis_type in (AxisType.Auto, AxisType.Explicit):
        mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
        sharding = NamedSharding(mesh, P("data"))
        with jax.set_mesh(mesh):
            assert_close(
                fb(losses.foreground_background_loss_shard_map)(
                    jax.device_put(fg, sharding), jax.device_put(bg, sharding)
                ),
                ref_fb,
            )
            sharded, sharded_labels = jax.device_put(outputs, sharding), jax.device_put(labels, sharding)
            for gather in ("gspmd", "shard_map"):
                assert_close(total(gather)(sharded, sharded_labels), ref_total)
    print("OK 8 devices")


if __name__ == "__main__":
    main()
