r"""Seconds per cell for the NTK condition number (K) and the linear-region count (R).

  python benchmarks/proxy_speed.py [--dataset=cifar10] [--cells=20] [--chunks=1,4]

Cells are evaluated as one-hot masks of the supernet (one compile for every cell), the way the
search and score_space run them. Compile time is reported apart. ``--chunks`` compares
evaluating one mask per call with vmapped chunks of masks, and projects the time to score all
15,625 cells with K and R (F and latency are table lookups). Prints a table and, last, one JSON.
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import benchmark, config as config_lib, data, io
from monas_jax.proxies import indicators
from monas_jax.search.evaluate import BatchEvaluator


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--dataset", default="cifar10")
  ap.add_argument("--cells", type=int, default=20)
  ap.add_argument("--chunks", default="1,4")
  ap.add_argument("--batch_size", type=int, default=32)
  args = ap.parse_args()
  c = config_lib.make_config(args.dataset)
  c.ntk.batch_size = args.batch_size
  x, _, source = data.load_images(args.dataset, None)
  images = jnp.asarray(x)
  table = benchmark.load_table()
  idx = np.random.default_rng(0).choice(len(table), args.cells, replace=False)
  masks = np.eye(5, dtype=np.float32)[table.ops[idx]]
  rows = []
  for name in ("ntk", "regions"):
    fn = indicators.make_indicators(c, (name,))[name].fn
    for chunk in [int(v) for v in args.chunks.split(",")]:
      ev = BatchEvaluator(fn, images, chunk)
      key = jax.random.key(1)
      ev(masks[:chunk], key, key)  # warm-up (first-call allocations)
      t = time.perf_counter()
      ev(masks, jax.random.key(2), key)  # new keys: nothing memoised
      per_cell = (time.perf_counter() - t) / len(masks)
      rows.append({"indicator": name, "chunk": chunk, "compile_s": ev.compile_seconds,
                   "seconds_per_cell": per_cell})
      print(f"{name:8s} chunk {chunk:2d}: compile {ev.compile_seconds:6.1f} s, "
            f"{per_cell * 1000:8.1f} ms per cell", flush=True)
  env = io.environment()
  # The whole space (experiments.score_space --config.num_cells=0) at the best chunk per indicator.
  best = {n: min(r["seconds_per_cell"] for r in rows if r["indicator"] == n)
          for n in ("ntk", "regions")}
  whole = len(table) * sum(best.values())
  print(f"whole space ({len(table)} cells, K + R, best chunk each): {whole / 60:.1f} min on "
        f"{jax.local_devices()[0].device_kind} x{len(jax.local_devices())}")
  print(json.dumps({"dataset": args.dataset, "ntk_batch_size": args.batch_size,
                    "cells": args.cells, "data_source": source, "rows": rows,
                    "projected_whole_space_s": whole,
                    "devices": {"kind": jax.local_devices()[0].device_kind,
                                "count": len(jax.local_devices())}, **env}))


if __name__ == "__main__":
  main()
