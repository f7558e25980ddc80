r"""Regenerates the derived and fitted built-in latency profiles.

  python benchmarks/latency_build_profiles.py \
      [--measurements=../shared/data/latency/hwnasbench_cifar10_latency_ms.csv]

Writes into monas_jax/hardware/profiles/:
- stm32l432.json: the stm32f746 table scaled analytically (``latency.scale_profile``), an
  estimate until measured.
- raspi4.json, pixel3.json, eyeriss.json, fpga.json: tables fitted (NNLS, model chosen by
  5-fold CV, ``calibration.calibrate``) to all 15,625 HW-NAS-Bench measurements of each device.
stm32f746.json is hand-written from the reference code's table and is not touched.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from monas_jax import space  # noqa: E402
from monas_jax.hardware import calibration, latency  # noqa: E402

DEFAULT_CSV = os.path.join(ROOT, "..", "shared", "data", "latency",
                           "hwnasbench_cifar10_latency_ms.csv")
OUT_DIR = os.path.join(ROOT, "monas_jax", "hardware", "profiles")

HWNASBENCH = ("HW-NAS-Bench (Li et al., ICLR 2021, MIT licence) latency of every NAS-Bench-201 "
              "network (C=16, N=5, CIFAR-10 input, batch 1) as redistributed by HayeonLee/HELP "
              "(MIT), bit-identical to HW-NAS-Bench's published values; file "
              "shared/data/latency/hwnasbench_cifar10_latency_ms.csv (sha256 {sha}), column {col}. "
              "This table is fitted to all 15,625 cells by NNLS with the model chosen by 5-fold "
              "cross-validation (monas_jax.hardware.calibration). Device and toolchain details "
              "are as reported by HW-NAS-Bench and were not re-verified here.")

DEVICES = {
    "raspi4": dict(device="Raspberry Pi 4 Model B (Broadcom BCM2711, 4x Arm Cortex-A72)",
                   clock_mhz=1500.0, runtime="TensorFlow Lite on the CPU (per HW-NAS-Bench)"),
    "pixel3": dict(device="Google Pixel 3 phone (Qualcomm Snapdragon 845)",
                   clock_mhz=2800.0, clock_note="peak clock of the Kryo 385 big cores",
                   runtime="TensorFlow Lite on the CPU (per HW-NAS-Bench)"),
    "eyeriss": dict(device="Eyeriss ASIC accelerator (simulated)", clock_mhz=None,
                    clock_note="a simulated accelerator; HW-NAS-Bench's clock is not restated here",
                    runtime="HW-NAS-Bench's Eyeriss performance simulator (estimated, not silicon)"),
    "fpga": dict(device="FPGA accelerator (HW-NAS-Bench's FPGA design)", clock_mhz=None,
                 clock_note="not restated here; see HW-NAS-Bench",
                 runtime="HW-NAS-Bench's FPGA implementation/estimator"),
}

L432_PROVENANCE = (
    "Derived from stm32f746 by analytic scaling (latency.scale_profile), not measured: every entry "
    "times the clock ratio 216/80 = 2.7; convolutions (compute-bound MAC loops) a further 1.6x for "
    "single- instead of dual-issue execution (METHOD.md 3.3: 1.5-1.7x, midpoint); skip and pooling "
    "(memory-bound: load/store-limited loops, where the M7's dual issue gains less) a further 1.25x "
    "(an assumption). An estimate to be replaced by measurements on the device "
    "(python -m experiments.latency fit).")


def build_l432(date: str) -> latency.Profile:
  base = latency.load_profile("stm32f746")
  return latency.scale_profile(
      base, name="stm32l432", device="STM32L432 (Arm Cortex-M4F, single-issue, 64 KB SRAM, "
      "128 KB flash)", clock_mhz=80.0, runtime="X-CUBE-AI (STM32Cube.AI), assumed as for stm32f746",
      compute_issue_factor=1.6, memory_issue_factor=1.25, date=date,
      provenance=L432_PROVENANCE, sram_bytes=64 * 1024, flash_bytes=128 * 1024)


def build_fitted(csv_path: str, date: str) -> list[latency.Profile]:
  with open(csv_path, "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  out = []
  for name, meta in DEVICES.items():
    col = f"{name}_latency_ms"
    archs, lat = calibration.read_measurements(csv_path, col)
    masks = calibration.ops_to_masks([space.parse_arch_str(a) for a in archs])
    res = calibration.calibrate(masks, lat, k=5, seed=0)
    fit = {"model": res.fit.model.label, "folds": res.folds, "seed": res.seed,
           "calibration_cells": len(lat), "heldout_kfold": res.heldout,
           "candidates_kfold": res.candidates, "latency_column": col, "source_sha256": sha}
    out.append(latency.make_profile(
        name=name, kind="edge", batch_size=1, date=date,
        date_note="date fitted; HW-NAS-Bench published the measurements in 2021",
        provenance=HWNASBENCH.format(sha=sha[:16], col=col), fit=fit,
        **meta, **calibration.table_fit_to_profile_fields(res.fit)))
  return out


def main(argv):
  csv_path = DEFAULT_CSV
  for a in argv[1:]:
    if a.startswith("--measurements="):
      csv_path = a.split("=", 1)[1]
    else:
      raise SystemExit(f"unknown argument {a!r}")
  date = datetime.date.today().isoformat()
  for p in [build_l432(date)] + build_fitted(csv_path, date):
    path = os.path.join(OUT_DIR, f"{p.name}.json")
    latency.save_profile(p, path)
    fit = p.extra.get("fit")
    note = (f"model {fit['model']}, 5-fold tau {fit['heldout_kfold']['kendall_tau']:.4f}"
            if fit else "derived")
    print(f"wrote {os.path.relpath(path, ROOT)}: {note}")


if __name__ == "__main__":
  main(sys.argv)
