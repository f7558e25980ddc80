r"""Latency and Pareto gap of mu-weighted searches, pooled over sweeps of different seeds.

  python benchmarks/mu_seeds.py DIR [DIR ...]

Reads ``mu*/seed*/result.json`` of ``experiments.sweep`` workdirs, or the same records committed
flat (``mu0.5.seed0.result.json``); no network is run. A sweep resumes only records of its own
config, so seeds searched before a config field was added (with its default, which changes no
result) cannot share a workdir with later ones; this pools them. Per setting: seeds, mean
STM32F746 latency of the found cells, mean C10 / C100 / IN16 accuracy and mean C10 Pareto gap
(``experiments.sweep.pareto_gaps``), and how many distinct cells the seeds found.
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from budget_gaps import record_paths  # noqa: E402
from experiments.sweep import pareto_gaps  # noqa: E402
from monas_jax import benchmark  # noqa: E402


def main():
  if len(sys.argv) < 2:
    raise SystemExit(__doc__)
  runs = {}
  for wd in sys.argv[1:]:
    for p in record_paths(wd, "mu"):
      with open(p) as f:
        r = json.load(f)
      mu = float(r["config"]["search"]["latency_weight"])
      runs.setdefault(mu, {})[int(r["seed"])] = r  # a seed found twice counts once
  acc = [benchmark.ACC_COLUMN[d] for d in ("cifar10", "cifar100", "imagenet16_120")]
  print("| mu | seeds | F746 ms (mean; per seed) | C10 / C100 / IN16 | C10 Pareto gap | cells |")
  print("| ---: | --- | --- | --- | ---: | ---: |")
  gaps = []
  for mu in sorted(runs):
    rs = [runs[mu][s] for s in sorted(runs[mu])]
    lat = [r["cell"]["latency_ms"]["stm32f746"] for r in rs]
    g = [pareto_gaps(r, "stm32f746")[f"gap_{acc[0]}"] for r in rs]
    gaps += g
    a = " / ".join(f"{np.mean([r['cell'][c] for r in rs]):.2f}" for c in acc)
    print(f"| {mu:g} | {','.join(map(str, sorted(runs[mu])))} | {np.mean(lat):.2f}; "
          f"{', '.join(f'{v:.2f}' for v in lat)} | {a} | {np.mean(g):.2f} | "
          f"{len({r['arch_str'] for r in rs})} |")
  print(f"\nmean C10 Pareto gap over all settings and seeds: {np.mean(gaps):.2f}")


if __name__ == "__main__":
  main()
