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

from monas_jax import benchmark, space  # noqa: E402
from monas_jax.hardware import latency, profiles  # noqa: E402


def main():
  if len(sys.argv) < 2:
    raise SystemExit(__doc__)
  acc = benchmark.test_accuracy("cifar10")
  ops = np.array([benchmark.arch_at(i).ops for i in range(len(acc))])
  lat_by_profile = {}
  rows = []
  for wd in sys.argv[1:]:
    # A sweep's workdir, or its records committed flat (budget10.seed0.result.json).
    paths = sorted(glob.glob(os.path.join(wd, "budget*", "seed*", "result.json")) +
                   glob.glob(os.path.join(wd, "budget*.seed*.result.json")))
    if not paths:
      raise SystemExit(f"{wd}: no budget*/seed*/result.json or budget*.seed*.result.json "
                       "(an experiments.sweep workdir or its committed records?)")
    for p in paths:
      with open(p) as f:
        r = json.load(f)
      c = r["config"]
      prof = c["hardware"]["profile"]
      if prof not in lat_by_profile:
        lat_by_profile[prof] = latency.estimate_many_ms(profiles.load_profile(prof), ops)
      budget = float(c["search"]["latency_budget_ms"])
      best = acc[lat_by_profile[prof] <= budget + 1e-9].max()
      final = r["rounds"][-1]["cells"]
      scored = np.array([acc[benchmark.index_of(space.parse_arch_str(x["arch_str"]))]
                         for x in final])
      found = acc[benchmark.index_of(space.parse_arch_str(r["arch_str"]))]
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
