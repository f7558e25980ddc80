r"""Minimal plain-JAX reproduction: a gradient through two convolutions, vmapped and sharded.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
      python benchmarks/xla_repro_sharded_conv_grad.py

Why it is here: synflow under a jit whose mask axis is sharded over host devices differed from
one device by up to 8 % (``xla_repro_sharded_synflow.py``: the forward pass agrees to 1e-16 in
float64, the gradient differs by up to 80 % on devices 1-3 without synflow's block scaling,
``shard_map`` agrees). This is the same failure with nothing of ours: per example m (a batch of
2-vectors, sharded over the devices), a fixed replicated 3x3 kernel for each of two
convolutions, f(m) = sum(w * d/dw sum(conv(conv(x, w1) * m0, w2) * m1)), ``jax.vmap`` over m.
Printed: the sharded jit's values divided by one device's. On JAX 0.10.2 / XLA:CPU every
example outside device 0's shard comes out at exactly half (with 2 devices: device 1's half of
the batch); with one mask multiply instead of two, or one convolution, all are 1.0. ``shard_map``
with ``check_vma=False`` (every device runs the one-device program on its slice) gives 1.0,
which is why ``monas_jax/search/evaluate.py`` uses it.
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DN = ("NHWC", "HWIO", "NHWC")


def net(ws, m, x):
  h = x
  for i, w in enumerate(ws):
    h = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=DN) * m[i]
  return jnp.sum(h)


def f(m, ws):
  g = jax.grad(net)(ws, m, jnp.ones((1, 4, 4, 2)))
  return sum(jnp.sum(w * gw) for w, gw in zip(ws, g))


def main():
  mesh = Mesh(np.asarray(jax.devices()), ("m",))
  masks = jnp.asarray(np.arange(16.0).reshape(8, 2) + 1)  # 8 examples, 2 per device on 4
  ws = [jnp.full((3, 3, 2, 2), 0.5), jnp.full((3, 3, 2, 2), 1.5)]
  batched = jax.vmap(f, in_axes=(0, None))
  one = np.asarray(jax.jit(batched)(masks, ws))
  sh, rep = NamedSharding(mesh, P("m")), NamedSharding(mesh, P())
  a = np.asarray(jax.jit(batched, in_shardings=(sh, rep), out_shardings=sh)(
      jax.device_put(masks, sh), ws))
  b = np.asarray(jax.jit(jax.shard_map(batched, mesh=mesh, in_specs=(P("m"), P()),
                                       out_specs=P("m"), check_vma=False))(
      jax.device_put(masks, sh), ws))
  print(f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} devices")
  print("sharded jit / one device:", np.round(a / one, 4).tolist())
  print("shard_map   / one device:", np.round(b / one, 4).tolist())


if __name__ == "__main__":
  main()
