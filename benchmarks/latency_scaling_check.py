r"""The latency scaling rule against published measurements of the same cells at two workloads.

  python benchmarks/latency_scaling_check.py [--data=../shared/data/latency/help_nb201_latency_27devices.npz]

``monas_jax.hardware.latency`` scales a table measured at 32x32x3, C=16, N=5 to another size by
operator cost: time proportional to work (convolutions C^2 x H x W, skip and pooling C x H x W).
A check needs one device's times of the same cells at two sizes. ``../shared/data`` holds none
(HW-NAS-Bench's ImageNet16-120 times are in its pickle, which is not there): every device of
HELP's 27 and of HW-NAS-Bench's CSV is measured at 32x32 CIFAR input only. What it does hold is
five GPUs at batch 1, 32 and 256. Batch b multiplies the work of every operator, stem and head
by b, exactly as an input side sqrt(b) times larger does under the rule (H x W enters every
term linearly), so the rule predicts ``L_b = b x L_1`` cell by cell. This prints, per GPU and
batch, Kendall tau (cell ranking kept?) and the median of predicted / measured (1 = the rule's
size), and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax.hardware import calibration  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                       "latency", "help_nb201_latency_27devices.npz")


def check(path: str) -> list[dict]:
  """Rows {device, batch, kendall_tau, spearman_rho, median_pred_over_meas, mape} per GPU."""
  d = np.load(path, allow_pickle=True)
  devices = [str(x) for x in d["devices"]]
  lat = d["latency"]
  rows = []
  for dev in sorted({x.rsplit("_", 1)[0] for x in devices if x.endswith("_1")}):
    l1 = lat[devices.index(f"{dev}_1")]
    for b in (32, 256):
      name = f"{dev}_{b}"
      if name not in devices:
        continue
      meas = lat[devices.index(name)]
      pred = b * l1
      m = calibration.rank_metrics(pred, meas, resolution_ms=None)
      rows.append({"device": dev, "batch": b, "kendall_tau": round(m["kendall_tau"], 4),
                   "spearman_rho": round(m["spearman_rho"], 4),
                   "median_pred_over_meas": round(float(np.median(pred / meas)), 3),
                   "mape": round(m["mape"], 1), "n_cells": m["n_cells"]})
  return rows


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data", default=DEFAULT)
  args = ap.parse_args()
  if not os.path.isfile(args.data):
    sys.exit(f"error: {args.data} not found (HELP's 27-device latencies, ../shared/data/latency)")
  rows = check(args.data)
  for r in rows:
    print(f"{r['device']:<10s} batch {r['batch']:>3d}: tau {r['kendall_tau']:.4f}  rho "
          f"{r['spearman_rho']:.4f}  median predicted/measured {r['median_pred_over_meas']:.3f}"
          f"  median |error| {r['mape']:.1f} %")
  print(json.dumps({"rows": rows}))


if __name__ == "__main__":
  main()
