r"""Where a budget search's gap comes from: coverage (cells it never scored) or ranking.

  python benchmarks/budget_gaps.py SWEEP_WORKDIR [SWEEP_WORKDIR ...]

Reads every ``budget*/seed*/result.json`` of ``experiments.sweep`` workdirs, or the same
records committed as ``budget*.seed*.result.json`` (no network is run). For each search: the best NAS-Bench-201 CIFAR-10 test accuracy among all 15,625 cells
within its latency budget (``hardware.profile``'s lookup table), the best among the cells the
search scored (its final round holds them all), and the found cell's. The gap (best within the
budget - found) splits into coverage (best within - best scored) and ranking (best scored -
found). Prints one row per search and the mean per budget and overall.
"""
import glob
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments.sweep import pareto_gaps  # noqa: E402
from monas_jax import benchmark, space  # noqa: E402


def record_paths(workdir: str, prefix: str) -> list[str]:
  """The ``result.json`` of every ``<prefix>*`` setting of an ``experiments.sweep`` workdir, or of
  its records committed flat (``budget10.seed0.result.json``)."""
  paths = sorted(glob.glob(os.path.join(workdir, f"{prefix}*", "seed*", "result.json")) +
                 glob.glob(os.path.join(workdir, f"{prefix}*.seed*.result.json")))
  if not paths:
    raise SystemExit(f"{workdir}: no {prefix}*/seed*/result.json or {prefix}*.seed*.result.json "
                     "(an experiments.sweep workdir or its committed records?)")
  return paths


def main():
  if len(sys.argv) < 2:
    raise SystemExit(__doc__)
  acc = benchmark.test_accuracy("cifar10")
  col = benchmark.ACC_COLUMN["cifar10"]
  rows = []
  for wd in sys.argv[1:]:
    for p in record_paths(wd, "budget"):
      with open(p) as f:
        r = json.load(f)
      c = r["config"]
      budget = float(c["search"]["latency_budget_ms"])
      found = r["cell"][col]
      # The sweep's own budget gap: best within the budget on hardware.profile minus found.
      best = found + pareto_gaps(r, c["hardware"]["profile"], budget)[f"budget_gap_{col}"]
      final = r["rounds"][-1]["cells"]
      scored = np.array([acc[benchmark.index_of(space.parse_arch_str(x["arch_str"]))]
                         for x in final])
      rows.append((budget, int(c["seed"]), best, scored.max(), found, len(final)))
  print("| budget (ms) | seed | best within | best scored | found | gap | coverage | ranking | "
        "cells scored |")
  print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for b, s, best, bs, found, n in sorted(rows):
    print(f"| {b:g} | {s} | {best:.2f} | {bs:.2f} | {found:.2f} | {best - found:.2f} | "
          f"{best - bs:.2f} | {bs - found:.2f} | {n} |")
  print("\n| budget (ms) | seeds | mean gap | max gap | mean coverage | mean ranking |")
  print("| ---: | ---: | ---: | ---: | ---: | ---: |")
  arr = np.array([r[:5] for r in rows])
  for b in sorted(set(arr[:, 0])):
    x = arr[arr[:, 0] == b]
    g = x[:, 2] - x[:, 4]
    print(f"| {b:g} | {len(x)} | {g.mean():.2f} | {g.max():.2f} | {(x[:, 2] - x[:, 3]).mean():.2f} | "
          f"{(x[:, 3] - x[:, 4]).mean():.2f} |")
  g = arr[:, 2] - arr[:, 4]
  print(f"| all | {len(arr)} | {g.mean():.2f} | {g.max():.2f} | {(arr[:, 2] - arr[:, 3]).mean():.2f} | "
        f"{(arr[:, 3] - arr[:, 4]).mean():.2f} |")


if __name__ == "__main__":
  main()
