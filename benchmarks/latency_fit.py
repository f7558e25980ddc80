r"""How well a table fitted on a few measured cells predicts the rest (HW-NAS-Bench devices).

  python benchmarks/latency_fit.py [--draws=10] [--sizes=25,50,100,200]
      [--measurements=../shared/data/latency/hwnasbench_cifar10_latency_ms.csv]

For each device and calibration size n, ``draws`` random draws of n cells (seeds 0..draws-1);
each draw is calibrated exactly as ``python -m experiments.latency fit --calibration_cells=n
--seed=s`` does (model chosen by 5-fold CV on the n cells only) and scored on the other
15,625 - n cells. Prints a markdown table: mean (min) held-out Kendall tau, mean Spearman rho,
mean median-APE, the tau without rounding to 1 ns, and which models were chosen.
"""
from __future__ import annotations

import collections
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from monas_jax import space  # noqa: E402
from monas_jax.hardware import calibration  # noqa: E402

DEFAULT_CSV = os.path.join(ROOT, "..", "shared", "data", "latency",
                           "hwnasbench_cifar10_latency_ms.csv")
DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga")
TARGET = {"raspi4": 0.78, "pixel3": 0.77, "eyeriss": 0.95, "fpga": 0.98}


def main(argv):
  args = dict(a.lstrip("-").split("=", 1) for a in argv[1:])
  csv_path = args.get("measurements", DEFAULT_CSV)
  draws = int(args.get("draws", 10))
  sizes = [int(s) for s in args.get("sizes", "25,50,100,200").split(",")]
  print(f"| device | n cal | tau held-out mean (min) | rho | median APE % | tau unrounded | "
        f"models chosen |")
  print("|---|---|---|---|---|---|---|")
  t0 = time.perf_counter()
  for device in DEVICES:
    archs, lat = calibration.read_measurements(csv_path, f"{device}_latency_ms")
    masks = calibration.ops_to_masks([space.parse_arch_str(a) for a in archs])
    for n in sizes:
      rows = collections.defaultdict(list)
      chosen = collections.Counter()
      for seed in range(draws):
        # The same draw as experiments.latency fit --calibration_cells=n --seed=seed.
        cal = np.sort(np.random.default_rng(seed).permutation(len(lat))[:n])
        rest = np.setdiff1d(np.arange(len(lat)), cal)
        res = calibration.calibrate(masks[cal], lat[cal], k=5, seed=seed)
        pred = res.fit.predict(masks[rest])
        m = calibration.rank_metrics(pred, lat[rest])
        raw = calibration.rank_metrics(pred, lat[rest], resolution_ms=None)
        for k in ("kendall_tau", "spearman_rho", "mape"):
          rows[k].append(m[k])
        rows["raw_tau"].append(raw["kendall_tau"])
        chosen[res.fit.model.label] += 1
      tau = np.array(rows["kendall_tau"])
      flag = "" if tau.min() >= TARGET[device] else " (below target)"
      models = ", ".join(f"{k} x{v}" for k, v in chosen.most_common())
      print(f"| {device} | {n} | {tau.mean():.3f} ({tau.min():.3f}){flag} | "
            f"{np.mean(rows['spearman_rho']):.3f} | {np.mean(rows['mape']):.1f} | "
            f"{np.mean(rows['raw_tau']):.3f} | {models} |", flush=True)
  print(f"\n{draws} draws per cell of the table; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
  main(sys.argv)
