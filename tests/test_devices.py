"""Several devices: BatchEvaluator shards the mask axis over 4 host-platform CPU devices and
gives the same values, in the same order, as one device. Runs as a subprocess because the
device count is fixed when JAX starts (XLA_FLAGS must be set before jax is imported)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from monas_jax import config as config_lib, data, space
from monas_jax.proxies import indicators, zero_cost
from monas_jax.search.evaluate import BatchEvaluator

assert jax.local_device_count() == 4, jax.devices()
c = config_lib.make_config("cifar10", "smoke")
images = jnp.asarray(data.load_images("cifar10", None)[0])
rng = np.random.default_rng(0)
masks = [space.full_mask(("none",))]
for _ in range(5):  # 6 masks: not a multiple of 4, so the last chunk is padded
  m = (rng.random((space.NUM_EDGES, space.NUM_OPS)) < 0.5).astype(np.float32)
  m[np.arange(space.NUM_EDGES), rng.integers(0, space.NUM_OPS, space.NUM_EDGES)] = 1.0
  masks.append(m)
masks = np.stack(masks)
key, init_key = jax.random.split(jax.random.key(3))
fns = {"flops": lambda: indicators.flops_indicator(c).fn,
       "regions": lambda: indicators.regions_indicator(c).fn,
       "synflow": lambda: zero_cost.proxy_fn(c, ("synflow",)),
       "meco": lambda: zero_cost.proxy_fn(c, ("meco",))}
out = {}
for name in sys.argv[1].split(","):
  fn = fns[name]()
  one = BatchEvaluator(fn, images, 1, devices=jax.local_devices()[:1])
  four = BatchEvaluator(fn, images, 3)
  assert (one.num_devices, one.chunk, four.num_devices, four.chunk) == (1, 1, 4, 4)
  a, b = one(masks, key, init_key), four(masks, key, init_key)
  out[name] = {"one": a.tolist(), "four": b.tolist(), "evaluations": four.evaluations}
print(json.dumps(out))
"""


def _run(names: str) -> dict:
  env = {k: v for k, v in os.environ.items() if k != "MONAS_JAX_COMPILATION_CACHE"}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  p = subprocess.run([sys.executable, "-c", _SCRIPT, names], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  out = json.loads(p.stdout.strip().splitlines()[-1])
  for name, r in out.items():
    one, four = np.asarray(r["one"]), np.asarray(r["four"])
    assert one.shape[0] == 6 and r["evaluations"] == 6, name
    assert np.isfinite(one).all(), name
    np.testing.assert_allclose(four, one, rtol=1e-6, atol=0, err_msg=name)
    # The masks differ, so equal values in order are not an accident of one repeated value.
    assert len(set(np.round(one.ravel(), 6))) > 1, name
  return out


@pytest.mark.slow
def test_sharded_evaluator_equals_one_device():
  _run("flops,regions")


@pytest.mark.slow
def test_sharded_gradient_proxies_equal_one_device():
  """synflow's gradients differed by up to 8 % on devices 1-3 when XLA's SPMD partitioner split
  the vmapped function (a sharded jit); the evaluator's shard_map runs the one-device program
  on each device. About a minute of compiling on 2 cores, so on demand (-m slow)."""
  _run("synflow,meco")


def test_auto_chunk_fits_memory_and_gives_the_same_values():
  """chunk=AUTO sizes the chunk from the compiled function's memory analysis and the free memory
  (given here; accelerators report theirs); the values do not depend on the chunk."""
  import jax
  import jax.numpy as jnp
  from monas_jax.search.evaluate import AUTO, BatchEvaluator, chunk_for_memory
  fn = lambda m, x, k, ik: jnp.tanh(x * m.sum()).sum() + jax.random.normal(k, ())
  x = jnp.ones((8, 32, 32, 3))
  dev = jax.local_devices()[:1]
  small = BatchEvaluator(fn, x, AUTO, devices=dev, memory_bytes=0)
  assert small.chunk == 1 and small.bytes_per_mask > x.size * 4
  big = BatchEvaluator(fn, x, AUTO, devices=dev, memory_bytes=int(small.bytes_per_mask * 9))
  assert big.chunk == 4  # the largest power of two within half of 9 masks' worth
  masks = np.random.default_rng(0).integers(0, 2, (7, 6, 5)).astype(np.float32)
  k = jax.random.key(3)
  np.testing.assert_array_equal(big(masks, k, k), small(masks, k, k))
  assert chunk_for_memory(1e6, 1e9) == 64 and chunk_for_memory(1e6, 1e7, 4) == 16
  assert chunk_for_memory(1e9, 1e6, 2) == 2
