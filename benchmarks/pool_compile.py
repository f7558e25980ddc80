r"""Compile time of a pool-heavy and a conv-heavy cell: average pooling's window counts as a
constant (models.avg_pool_3x3) against Flax's count_include_pad=False, which pools an array of
ones that XLA constant-folds on every compile.

  python benchmarks/pool_compile.py [--impls=flax,constant] [--cells=pool,conv] [--repeats=2]

For each (implementation, cell) a fresh process builds the training step of experiments.train
(C=16, N=5, CIFAR-10, batch 256, augmentation) and its evaluation step, and times
``jit(...).lower(...).compile()`` of each (no persistent compilation cache), in wall seconds
and in CPU seconds of the process (all its threads: less sensitive to other load on a shared
machine). ``flax`` patches
``models.avg_pool_3x3`` back to the old formula inside the child only. Prints one JSON line per
run, then a table of medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = {
    "pool": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|"
            "avg_pool_3x3~2|",
    "conv": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "nor_conv_3x3~2|",
}


def child(impl: str, cell: str) -> dict:
  """Compile seconds of the training and evaluation steps of one cell, in this process."""
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from monas_jax import data, models, train

  if impl == "flax":
    import flax.linen as nn
    models.avg_pool_3x3 = lambda x: nn.avg_pool(  # the formula before the constant counts
        x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)
  c = train.default_config("cifar10")
  t = c.train
  net = train.make_network(c, CELLS[cell])
  tx = train.make_optimizer(c, 1000)
  state = jax.eval_shape(train.make_init(c, net, tx), jax.random.key(0))
  s = data.IMAGE_SIZE["cifar10"]
  images = jax.ShapeDtypeStruct((2000, s, s, 3), jnp.uint8)
  labels = jax.ShapeDtypeStruct((2000,), jnp.int32)
  out = {"impl": impl, "cell": cell, "arch_str": CELLS[cell]}
  step = train.make_train_step(net, tx, "cifar10", bool(t.augment))
  idx = jax.ShapeDtypeStruct((t.batch_size,), jnp.int32)
  t0, c0 = time.perf_counter(), time.process_time()
  step.lower(state, images, labels, idx, jax.random.key(0)).compile()
  out["train_step_compile_s"] = time.perf_counter() - t0
  out["train_step_compile_cpu_s"] = time.process_time() - c0
  ev = train.make_eval_step(net, "cifar10")
  b = t.eval_batch_size
  t0, c0 = time.perf_counter(), time.process_time()
  ev.lower(state.params, state.batch_stats, images, labels,
           jax.ShapeDtypeStruct((b,), jnp.int32), jax.ShapeDtypeStruct((b,), jnp.float32)
           ).compile()
  out["eval_step_compile_s"] = time.perf_counter() - t0
  out["eval_step_compile_cpu_s"] = time.process_time() - c0
  out["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
  del np
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--impls", default="flax,constant")
  ap.add_argument("--cells", default="pool,conv")
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--child", nargs=2, metavar=("IMPL", "CELL"), help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a.child:
    print(json.dumps(child(*a.child)))
    return
  env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
  runs = []
  for r in range(a.repeats):
    for impl in a.impls.split(","):
      for cell in a.cells.split(","):
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", impl, cell],
                           capture_output=True, text=True, env=env, check=True)
        rec = {"repeat": r, **json.loads(p.stdout.strip().splitlines()[-1])}
        print(json.dumps(rec), flush=True)
        runs.append(rec)
  print("\n| impl | cell | train step compile, s wall / s CPU "
        "| eval step compile, s wall / s CPU |")
  print("| --- | --- | --- | --- |")
  for impl in a.impls.split(","):
    for cell in a.cells.split(","):
      rs = [r for r in runs if r["impl"] == impl and r["cell"] == cell]
      cols = []
      for step in ("train_step", "eval_step"):
        wall = statistics.median(r[f"{step}_compile_s"] for r in rs)
        cpu = statistics.median(r[f"{step}_compile_cpu_s"] for r in rs)
        cols.append(f"{wall:.1f} / {cpu:.1f}")
      print(f"| {impl} | {cell} | {cols[0]} | {cols[1]} |")


if __name__ == "__main__":
  main()
