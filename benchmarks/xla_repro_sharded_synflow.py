r"""Reproduction: synflow under a sharded ``jax.jit`` against ``shard_map`` and one device.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
      timeout 600 python benchmarks/xla_repro_sharded_synflow.py [--steps=ours,forward,grad,init,plain]

Context (monas_jax/search/evaluate.py): BatchEvaluator splits a chunk of masks over the local
devices. Written first as a jit with the mask axis sharded (XLA's SPMD partitioner splits the
vmapped function), synflow differed from one device's values by up to 8 % on devices 1-3; with
``shard_map`` (every device runs the one-device program on its slice) it does not.

Steps, from our code down to plain JAX (each prints the largest relative difference of the
sharded jit and of shard_map from one device, per device slot):
  ours:  zero_cost.proxy_fn(smoke config, ("synflow",)) vmapped over 8 masks.
  forward: the supernet's logits summed, |initial weights|, all-ones input, eval-mode BatchNorm
         (no gradient, no block scaling): Network.apply directly.
  grad:  the gradient of that sum, summed as |w| * dR/dw over the kernels (synflow without
         its per-block scaling).
  init:  only the weights: models.initialize (the grouped, vmapped draws of every leaf) of the
         smoke supernet, reduced per mask to sum(mask-independent |w|) * sum(mask).
  plain: plain JAX: jax.vmap over masks of a function that draws its weights with
         jax.random from a replicated key (not batched) and contracts them with the mask.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def compare(name, fn, masks, *args):
  """Prints the max relative difference (sharded jit, shard_map) vs one device per slot."""
  n = jax.device_count()
  mesh = Mesh(np.asarray(jax.devices()), ("m",))
  batched = jax.vmap(fn, in_axes=(0,) + (None,) * len(args))
  one = np.asarray(jax.jit(batched)(masks, *args))
  shard, rep = NamedSharding(mesh, P("m")), NamedSharding(mesh, P())
  sharded_jit = jax.jit(batched, in_shardings=(shard,) + (rep,) * len(args), out_shardings=shard)
  a = np.asarray(sharded_jit(jax.device_put(masks, shard), *args))
  sm = jax.jit(jax.shard_map(batched, mesh=mesh, in_specs=(P("m"),) + (P(),) * len(args),
                             out_specs=P("m"), check_vma=False))
  b = np.asarray(sm(jax.device_put(masks, shard), *args))
  per = len(masks) // n

  def rel(x):
    d = np.abs(x - one) / np.maximum(np.abs(one), 1e-30)
    d = d.reshape(len(masks), -1).max(axis=1)
    return [float(d[i * per:(i + 1) * per].max()) for i in range(n)]

  print(f"{name}: one device {np.round(one.ravel()[:4], 5).tolist()} ...")
  print(f"  sharded jit, max rel diff per device: {['%.2e' % v for v in rel(a)]}")
  print(f"  shard_map,   max rel diff per device: {['%.2e' % v for v in rel(b)]}", flush=True)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", default="ours,forward,grad,init,plain")
  a = ap.parse_args()
  print(f"jax {jax.__version__}, {jax.device_count()} devices ({jax.devices()[0].platform}); "
        f"jax_threefry_partitionable={jax.config.jax_threefry_partitionable}")
  rng = np.random.default_rng(0)
  masks = (rng.random((8, 6, 5)) < 0.5).astype(np.float32)
  masks[:, np.arange(6), rng.integers(0, 5, 6)] = 1.0
  key, init_key = jax.random.split(jax.random.key(3))
  steps = a.steps.split(",")
  if "ours" in steps:
    from monas_jax import config as config_lib
    from monas_jax.proxies import zero_cost
    c = config_lib.make_config("cifar10", "smoke")
    fn = zero_cost.proxy_fn(c, ("synflow",))
    compare("ours: synflow (smoke supernet)", lambda m, k, ik: fn(m, None, k, ik), masks, key,
            init_key)
  if "forward" in steps or "grad" in steps:
    from monas_jax import config as config_lib, models
    from monas_jax.proxies import zero_cost
    c = config_lib.make_config("cifar10", "smoke")
    b = zero_cost.bench("cifar10", c.zc.channels, c.zc.cells_per_stage)
    # float32 overflows without synflow's per-block scaling: these two steps run in float64
    # (with the weights drawn in float32, as in ours, then cast).
    jax.config.update("jax_enable_x64", True)
    x = jnp.ones((1, b.image_size, b.image_size, b.in_channels), jnp.float64)
    f64 = lambda t: jax.tree_util.tree_map(lambda l: l.astype(jnp.float64), t)

    def logits_sum(p, m):
      out, _ = b.net.apply({"params": p, "batch_stats": b.stats}, x, m, train=False,
                           mutable=["batch_stats"])
      return jnp.sum(out)

    def abs_params(k):
      return f64(jax.tree_util.tree_map(jnp.abs, models.initialize(k, b.params, "torch_default")))

    def forward(m, k):
      return logits_sum(abs_params(k), m)

    def grad(m, k):
      p = abs_params(k)
      g = jax.grad(logits_sum)(p, m)
      kernels = lambda t: [l for path, l in jax.tree_util.tree_flatten_with_path(t)[0]
                           if getattr(path[-1], "key", None) == "kernel"]
      return sum(jnp.sum(w * gw) for w, gw in zip(kernels(p), kernels(g)))

    if "forward" in steps:
      compare("forward: sum of logits, |weights|, ones input", forward, masks, init_key)
    if "grad" in steps:
      compare("grad: sum |w| dR/dw without block scaling", grad, masks, init_key)
  if "init" in steps:
    from monas_jax import config as config_lib, models
    from monas_jax.proxies import zero_cost
    c = config_lib.make_config("cifar10", "smoke")
    b = zero_cost.bench("cifar10", c.zc.channels, c.zc.cells_per_stage)

    def init_only(m, k):
      p = models.initialize(k, b.params, "torch_default")
      leaves = jax.tree_util.tree_leaves(p)
      return jnp.stack([jnp.sum(jnp.abs(l)) for l in leaves]) * jnp.sum(m)

    compare("init: models.initialize leaves x sum(mask)", init_only, masks, init_key)
  if "plain" in steps:
    def plain(m, k):
      ks = jax.random.split(k, 16)
      w = jax.vmap(lambda kk: jax.random.normal(kk, (6, 5, 64)))(ks)  # grouped draws
      return jnp.einsum("eo,geoc->gc", m, jnp.abs(w))

    compare("plain: vmapped jax.random.normal draws contracted with the mask", plain, masks,
            init_key)


if __name__ == "__main__":
  main()
