r"""Where XLA:CPU's backward bytes through the masked supernet come from, and what fusion costs.

  python benchmarks/xla_backward_fusion.py --what=vjp --cells_per_stage=1,2,3,5 [--no_fusion]
  python benchmarks/xla_backward_fusion.py --what=proxies [--no_fusion]
  python benchmarks/xla_backward_fusion.py --what=single_path

``--what=vjp``: one input-gradient (VJP of the logits' sum) of the C=16 supernet, all operators on,
batch 32: compile seconds, the second run's seconds, and ``cost_analysis`` bytes and flops.
``--what=proxies``: the default ensemble's indicators (``zero_cost.proxy_fn``) compiled once and
run on the first 4 cells of ``score_space``'s 1,000-cell sample: compile and per-cell seconds.
``--what=single_path``: one input-gradient at batch 64 (C=16, N=5) of one cell (the CIFAR-100
optimum), through the masked supernet (every operator computed, then masked; mask an argument)
and through the standalone network that builds only that cell's operators: compile and run
seconds, what computing only a cell's operators could save per evaluation.
``--no_fusion`` sets ``XLA_FLAGS=--xla_disable_hlo_passes=fusion`` before JAX starts (XLA's
instruction fusion off, for the comparison only; the package never sets it).
Results: benchmarks/RESULTS.md, issue-20 section ("XLA:CPU's quadratic backward bytes").
"""
import argparse
import functools
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _compile_and_time(fn, args, repeats=1):
  """(compile s, best run s of ``repeats`` after one warm-up run, the compiled function)."""
  import jax
  t = time.perf_counter()
  c = jax.jit(fn).lower(*args).compile()
  tc = time.perf_counter() - t
  jax.block_until_ready(c(*args))
  runs = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(c(*args))
    runs.append(time.perf_counter() - t)
  return tc, min(runs), c


def _input_grad(net):
  """grad(x, mask, v): the gradient of the sum of ``net``'s logits with respect to its images x."""
  import jax
  import jax.numpy as jnp

  def grad(x, mask, v):
    f = lambda x: net.apply(v, x, mask, train=True, mutable=["batch_stats"])[0]
    y, pull = jax.vjp(f, x)
    return pull(jnp.ones_like(y))[0]

  return grad


def vjp(depths):
  import jax
  import jax.numpy as jnp
  from monas_jax import models
  x = jax.random.normal(jax.random.key(0), (32, 32, 32, 3))
  mask = jnp.ones((6, 5))
  for n in depths:
    net = models.Network(channels=16, cells_per_stage=n, num_classes=10)
    v = net.init(jax.random.key(1), x, mask)

    # Parameters bound, so constants of the compile (as recorded); the mask an argument.
    tc, tr, c = _compile_and_time(functools.partial(_input_grad(net), v=v), (x, mask))
    ca = c.cost_analysis()
    ca = ca[0] if isinstance(ca, list) else ca
    print(f"N={n}: compile {tc:.1f} s, run {tr:.2f} s, "
          f"{ca['bytes accessed'] / 1e9:.1f} GB, {ca['flops'] / 1e9:.1f} GFLOP", flush=True)


def single_path():
  import jax
  import jax.numpy as jnp
  from monas_jax import models, space
  ops = space.parse_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                             "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
  x = jax.random.normal(jax.random.key(0), (64, 32, 32, 3))
  mask = jnp.asarray(space.ops_to_mask(ops))
  for name, net, m in (("masked supernet", models.Network(16, 5, 10), mask),
                       ("standalone cell", models.Network(16, 5, 10, ops_per_edge=ops), None)):
    v = net.init(jax.random.key(1), x, m)

    # Parameters and mask as arguments: nothing constant-folds.
    tc, tr, _ = _compile_and_time(_input_grad(net), (x, m, v), repeats=3)
    print(f"{name}: compile {tc:.1f} s, run {tr:.2f} s (best of 3)", flush=True)


def proxies():
  import jax
  import jax.numpy as jnp
  from experiments.score_space import sample_cells
  from monas_jax import benchmark, config as config_lib, data, space
  from monas_jax.proxies import zero_cost
  c = config_lib.make_config("cifar10")
  images, labels, _ = data.load_images(c.dataset, c.data_dir)
  d = (jnp.asarray(images), jnp.asarray(labels))
  fn = jax.jit(zero_cost.proxy_fn(c, tuple(c.ensemble.indicators)))
  ops = benchmark.load_table().ops
  masks = [jnp.asarray(space.ops_to_mask(ops[i])) for i in sample_cells(1000, 0)[:4]]
  key = jax.random.key(0)
  t = time.perf_counter()
  compiled = fn.lower(masks[0], d, key).compile()
  print(f"{', '.join(c.ensemble.indicators)}: compile {time.perf_counter() - t:.1f} s", flush=True)
  for m in masks:
    t = time.perf_counter()
    jax.block_until_ready(compiled(m, d, key))
    print(f"  cell: {time.perf_counter() - t:.2f} s", flush=True)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--what", choices=("vjp", "proxies", "single_path"), default="vjp")
  ap.add_argument("--cells_per_stage", default="1,2,3,5")
  ap.add_argument("--no_fusion", action="store_true")
  a = ap.parse_args()
  if a.no_fusion:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_disable_hlo_passes=fusion").strip()
  if a.what == "vjp":
    vjp([int(n) for n in a.cells_per_stage.split(",")])
  else:
    {"proxies": proxies, "single_path": single_path}[a.what]()


if __name__ == "__main__":
  main()
