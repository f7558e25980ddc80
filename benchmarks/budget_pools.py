r"""Within a latency budget, how close does the composed score's pick come to the best cell?

  python benchmarks/budget_pools.py [--records=benchmarks/results/score-c10-zc] [--pools=200]

Reads the committed ``score_space`` records of 1,000 cells (no network is run). For each budget
(STM32F746 lookup-table latency) it draws random pools of 140 cells within the budget (about
what one budget search evaluates), recomposes the score inside each pool (log-rank, as the
search does) and prints the mean CIFAR-10 test-accuracy gap between the pool's best cell and the
best-scored one, for the default ensemble and for each of its three-indicator subsets. A
diagnosis of budget searches (benchmarks/RESULTS.md, issue 20), not a choice of design.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from choose_ensemble import cell_values  # noqa: E402
from experiments.score_space import sample_cells  # noqa: E402
from monas_jax import benchmark, config as config_lib  # noqa: E402
from monas_jax.hardware import latency, profiles  # noqa: E402
from monas_jax.search import compose  # noqa: E402

BUDGETS_MS = (10.0, 15.0, 20.0, 30.0)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--records", default=os.path.join(ROOT, "benchmarks/results/score-c10-zc"))
  ap.add_argument("--pools", type=int, default=200)
  ap.add_argument("--pool_size", type=int, default=140)
  a = ap.parse_args()
  t = benchmark.load_table()
  cells = sample_cells(1000, 0)
  default = tuple(config_lib.make_config("cifar10").ensemble.indicators)
  values = cell_values(a.records, cells, default, t)
  acc = t.columns["cifar10_test_acc"][cells]
  ops = np.array([benchmark.arch_at(int(i)).ops for i in cells])
  lat = latency.estimate_many_ms(profiles.load_profile("stm32f746"), ops)
  variants = [default] + [tuple(n for n in default if n != drop) for drop in default]
  print("| indicators | " + " | ".join(f"{b:g} ms" for b in BUDGETS_MS) + " |")
  print("| --- |" + " ---: |" * len(BUDGETS_MS))
  for names in variants:
    rng = np.random.default_rng(0)
    row = []
    for b in BUDGETS_MS:
      inside = np.flatnonzero(lat <= b)
      gaps = []
      for _ in range(a.pools):
        pool = rng.choice(inside, min(a.pool_size, len(inside)), replace=False)
        s = compose.compose({n: values[n][pool] for n in names}, {n: True for n in names},
                            rule="log_rank")
        gaps.append(acc[pool].max() - acc[pool][np.argmax(s)])
      row.append(f"{np.mean(gaps):.2f} (n={len(inside)})")
    print(f"| {', '.join(names)} | " + " | ".join(row) + " |")


if __name__ == "__main__":
  main()
