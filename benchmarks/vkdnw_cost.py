r"""VKDNW at the benchmark network's size: its cost here, and what its first sort key allows.

  python benchmarks/vkdnw_cost.py [--cells=1] [--dataset=cifar10] \
      [--channels=16 --cells_per_stage=5]

1. Compiles ``zero_cost.vkdnw_fn`` once and scores the first ``--cells`` of the cells the
   accuracy-only ensemble search chooses between (``trainability_draws.CELLS``), printing compile
   and per-cell seconds and the values (``vkdnw`` = parameter tensors + entropy / log 10,
   ``vkdnw_entropy``). At C=16, N=5 on the 2-core VM: minutes each (benchmarks/RESULTS.md).
2. From the NAS-Bench-201 table alone (no network run): the best and mean accuracy of the cells
   with k convolutions, k = 0..6. VKDNW_single ranks the number of parameter tensors first, so its
   pick is always a cell with the most convolutions of its pool.
"""
import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from monas_jax import benchmark, space  # noqa: E402
from monas_jax.proxies import zero_cost  # noqa: E402
from trainability_draws import CELLS  # noqa: E402


def conv_table():
  t = benchmark.load_table()
  convs = [space.OP_INDEX["nor_conv_1x1"], space.OP_INDEX["nor_conv_3x3"]]
  n = np.isin(t.ops, convs).sum(axis=1)
  acc = {ds: benchmark.test_accuracy(ds) for ds in ("cifar10", "cifar100")}
  print("| convolutions | cells | best C10 | best C100 | mean C100 |")
  print("| ---: | ---: | ---: | ---: | ---: |")
  for k in range(7):
    m = n == k
    print(f"| {k} | {m.sum():,} | {acc['cifar10'][m].max():.2f} | {acc['cifar100'][m].max():.2f} "
          f"| {acc['cifar100'][m].mean():.2f} |")
  top = np.argsort(-acc["cifar100"])[:20]
  skip30 = int(np.sum(t.ops[top, 3] == space.OP_INDEX["skip_connect"]))
  print(f"the 20 best CIFAR-100 cells: {skip30} with skip on edge 3<-0")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--cells", type=int, default=1)
  ap.add_argument("--dataset", default="cifar10", help="its class count sets the backward passes")
  ap.add_argument("--channels", type=int, default=16)
  ap.add_argument("--cells_per_stage", type=int, default=5)
  a = ap.parse_args()
  conv_table()
  if a.cells <= 0:
    return
  fn = jax.jit(zero_cost.vkdnw_fn(zero_cost.bench(a.dataset, a.channels, a.cells_per_stage)))
  key = jax.random.key(0)
  masks = [jnp.asarray(space.ops_to_mask(space.parse_arch_str(c))) for c in CELLS[:a.cells]]
  t = time.perf_counter()
  compiled = fn.lower(masks[0], None, key).compile()
  print(f"compile {time.perf_counter() - t:.1f} s", flush=True)
  for c, m in zip(CELLS, masks):
    t = time.perf_counter()
    v = np.asarray(compiled(m, None, key))
    print(f"{c}: vkdnw {v[0]:.4f}, entropy {v[1]:.4f}, {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
  main()
