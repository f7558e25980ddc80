r"""Latency tables: fit, validate, profile on this host, measure whole networks.

  python -m experiments.latency fit --measurements=FILE.csv --out=PROFILE.json
      [--latency_column=latency_ms] [--calibration_cells=N --seed=S] [--folds=5]
      [--name= --device= --kind=edge --clock_mhz= --runtime= --provenance=]
      [--image_size=32 --image_channels=3 --channels=16 --cells_per_stage=5]
  python -m experiments.latency validate --profile=NAME_OR_JSON --measurements=FILE.csv
  python -m experiments.latency profile --out=host.json
  python -m experiments.latency measure --cells=100 [--profile=host.json] [--out=measured.csv]

FILE.csv has a header with ``arch_str`` and the latency column (ms), one measured cell per row.
``fit`` records the network the cells were measured as (input side and channels, C, N; default
NAS-Bench-201's 32x32x3, C=16, N=5): a search or describe for that network uses the table as it
is, and scales it by operator cost for any other (``monas_jax.hardware.latency``).
``fit --calibration_cells=N`` fits on N random rows and also scores the other rows ("holdout").
Every command prints, as its last line, one JSON object; fit/validate/measure put
``kendall_tau``, ``spearman_rho``, ``mape`` (median absolute percentage error, %) and ``n_cells``
at its top level (fit: nested k-fold on the calibration cells).

Example, the HW-NAS-Bench check (100 calibration cells, the other 15,525 held out):
  python -m experiments.latency fit \
      --measurements=../shared/data/latency/hwnasbench_cifar10_latency_ms.csv \
      --latency_column=raspi4_latency_ms --calibration_cells=100 --seed=0 --out=/tmp/raspi4.json
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import sys
import time

from absl import app, flags, logging
from experiments import cli
import numpy as np

FLAGS = flags.FLAGS
flags.DEFINE_string("measurements", None, "CSV with arch_str and a latency column (ms).")
flags.DEFINE_string("latency_column", "latency_ms", "Name of the latency column in the CSV.")
flags.DEFINE_string("out", None, "fit/profile: profile JSON to write; measure: CSV to write.")
flags.DEFINE_string("profile", None, "Built-in profile name or profile JSON path.")
flags.DEFINE_integer("calibration_cells", 0, "fit: use this many random rows (0: all).")
flags.DEFINE_integer("seed", 0, "Seed for the calibration draw, the folds, the measured cells.")
flags.DEFINE_integer("folds", 5, "k of k-fold cross-validation.")
flags.DEFINE_string("name", None, "Profile name (default: the --out file name).")
flags.DEFINE_string("device", None, "Device the measurements come from.")
flags.DEFINE_enum("kind", "edge", ["mcu", "edge", "host"], "Profile kind.")
flags.DEFINE_float("clock_mhz", None, "Device clock (MHz), if known.")
flags.DEFINE_string("runtime", None, "Runtime/toolchain that ran the networks.")
flags.DEFINE_string("provenance", None, "Where the measurements come from.")
flags.DEFINE_integer("sram_bytes", None, "MCU SRAM capacity (bytes).")
flags.DEFINE_integer("flash_bytes", None, "MCU flash capacity (bytes).")
flags.DEFINE_integer("image_size", None, "fit: input side (pixels) the cells were measured at "
                     "(default 32).")
flags.DEFINE_integer("image_channels", None, "fit: input channels the cells were measured with "
                     "(1 or 3; default 3).")
flags.DEFINE_integer("channels", None, "fit: C of the measured networks (default 16).")
flags.DEFINE_integer("cells_per_stage", None, "fit: N of the measured networks (default 5).")
flags.DEFINE_integer("cells", 100, "measure: number of random cells.")
flags.DEFINE_integer("rounds", 15, "profile/measure: timing rounds (median over rounds).")
flags.DEFINE_integer("warmup", 3, "profile/measure: warm-up calls per network.")
flags.DEFINE_float("min_repeat_ms", 10.0, "profile/measure: least time per network per round.")

COMMANDS = ("fit", "validate", "profile", "measure")


def _need(*names):
  missing = [n for n in names if getattr(FLAGS, n) in (None, "")]
  if missing:
    raise app.UsageError("missing " + ", ".join(f"--{n}" for n in missing))


def _sha256(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _load_measurements():
  from monas_jax import space
  from monas_jax.hardware import calibration
  archs, lat = calibration.read_measurements(FLAGS.measurements, FLAGS.latency_column)
  ops = np.array([space.parse_arch_str(a) for a in archs])
  return archs, ops, lat


def _host_info() -> dict:
  import jax
  dev = jax.devices()[0]
  info = {"jax": jax.__version__, "backend": jax.default_backend(), "device_kind": dev.device_kind,
          "cpu_count": os.cpu_count(), "machine": platform.machine(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}
  if hasattr(os, "getloadavg"):
    info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
  return info


def _cpu_name_and_clock():
  name, mhz = platform.processor() or platform.machine(), None
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, val = line.partition(":")
        if key.strip() == "model name":
          name = val.strip()
        elif key.strip() == "cpu MHz" and mhz is None:
          mhz = round(float(val), 1)
  except OSError:
    pass
  return name, mhz


def cmd_fit():
  from monas_jax.hardware import calibration, latency
  _need("measurements", "out")
  archs, ops, lat = _load_measurements()
  masks = calibration.ops_to_masks(ops)
  n = len(lat)
  cal = np.arange(n)
  if FLAGS.calibration_cells:
    if not 0 < FLAGS.calibration_cells <= n:
      raise app.UsageError(f"--calibration_cells must be in [1, {n}], got {FLAGS.calibration_cells}")
    cal = np.sort(np.random.default_rng(FLAGS.seed).permutation(n)[:FLAGS.calibration_cells])
  rest = np.setdiff1d(np.arange(n), cal)
  t0 = time.perf_counter()
  res = calibration.calibrate(masks[cal], lat[cal], FLAGS.folds, FLAGS.seed)
  fit_s = time.perf_counter() - t0
  report = {"model": res.fit.model.label, "folds": res.folds, "seed": res.seed,
            "calibration_cells": int(len(cal)), "heldout_kfold": res.heldout,
            "candidates_kfold": res.candidates, "fit_s": round(fit_s, 3),
            "source": os.path.basename(FLAGS.measurements),
            "source_sha256": _sha256(FLAGS.measurements), "latency_column": FLAGS.latency_column}
  if len(rest):
    report["holdout"] = calibration.rank_metrics(res.fit.predict(masks[rest]), lat[rest])
  name = FLAGS.name or os.path.splitext(os.path.basename(FLAGS.out))[0]
  provenance = FLAGS.provenance or (
      f"fitted by monas_jax.hardware.calibration (NNLS, model chosen by {FLAGS.folds}-fold CV) on "
      f"{len(cal)} cells of {os.path.basename(FLAGS.measurements)} column {FLAGS.latency_column}")
  clock = {} if FLAGS.clock_mhz is not None else {"clock_note": "not given to the fit"}
  net = _measured_network()
  profile = latency.make_profile(
      name=name, device=FLAGS.device or "unknown (set --device)", kind=FLAGS.kind,
      clock_mhz=FLAGS.clock_mhz, runtime=FLAGS.runtime or "unknown (set --runtime)",
      batch_size=1, provenance=provenance, date=datetime.date.today().isoformat(),
      sram_bytes=FLAGS.sram_bytes, flash_bytes=FLAGS.flash_bytes, fit=report,
      cells_per_stage=net.cells_per_stage,
      network={"image_size": net.image_size, "image_channels": net.image_channels,
               "channels": net.channels},
      **calibration.table_fit_to_profile_fields(res.fit), **clock)
  latency.save_profile(profile, FLAGS.out)
  logging.info("model %s; wrote %s", res.fit.model.label, FLAGS.out)
  for c in res.candidates:
    print(f"  {c['model']:<36s} k-fold tau {c['kendall_tau']:.4f}  mape {c['mape']:.2f}%")
  if "holdout" in report:
    h = report["holdout"]
    print(f"holdout ({h['n_cells']} cells): tau {h['kendall_tau']:.4f} rho "
          f"{h['spearman_rho']:.4f} mape {h['mape']:.2f}%")
  return {**res.heldout, "metrics_on": "nested k-fold on the calibration cells",
          "model": res.fit.model.label, "out": FLAGS.out, "network": net._asdict(),
          **({"holdout": report["holdout"]} if "holdout" in report else {})}


def _measured_network():
  """The network of ``fit``'s measurements from the flags (NAS-Bench-201's where not given)."""
  from monas_jax.hardware import latency
  given = {"image_size": FLAGS.image_size, "image_channels": FLAGS.image_channels,
           "channels": FLAGS.channels, "cells_per_stage": FLAGS.cells_per_stage}
  for name, v in given.items():
    if v is not None and v < 1:
      raise app.UsageError(f"--{name} = {v} is not allowed: a positive integer")
  if FLAGS.image_channels not in (None, 1, 3):
    raise app.UsageError(f"--image_channels = {FLAGS.image_channels} is not allowed: 1 or 3")
  if FLAGS.image_size is not None and FLAGS.image_size % 4:
    raise app.UsageError(f"--image_size = {FLAGS.image_size} is not allowed: a multiple of 4 (the "
                         "network halves it twice)")
  default = latency.MeasuredNetwork(latency.REFERENCE_IMAGE_SIZE, latency.REFERENCE_IMAGE_CHANNELS,
                                    latency.REFERENCE_CHANNELS, 5)
  return default._replace(**{k: v for k, v in given.items() if v is not None})


def cmd_validate():
  from monas_jax.hardware import calibration, latency
  _need("profile", "measurements")
  profile = latency.load_profile(FLAGS.profile)
  _, ops, lat = _load_measurements()
  pred = latency.estimate_many_ms(profile, ops)
  return {**calibration.rank_metrics(pred, lat), "profile": profile.name,
          "measurements": FLAGS.measurements}


def cmd_profile():
  from monas_jax.hardware import latency, profiling
  _need("out")
  info = _host_info()
  t0 = time.perf_counter()
  res = profiling.profile_operators(
      seed=FLAGS.seed, warmup=FLAGS.warmup, rounds=FLAGS.rounds,
      min_repeat_s=FLAGS.min_repeat_ms / 1e3, progress=lambda n: logging.info("compiled %s", n))
  wall = time.perf_counter() - t0
  if hasattr(os, "getloadavg"):
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
  if info["backend"] == "cpu":
    device, clock = _cpu_name_and_clock()
    device = f"{device} ({info['cpu_count']} cores)"
  else:
    device, clock = info["device_kind"], None
  name = FLAGS.name or os.path.splitext(os.path.basename(FLAGS.out))[0]
  profile = profiling.host_profile(
      res, name=name, device=device, clock_mhz=clock,
      runtime=f"JAX {info['jax']} / XLA ({info['backend']}), float32, Flax Linen inference",
      date=datetime.date.today().isoformat(),
      provenance=("measured in place by monas_jax.hardware.profiling.profile_operators: each "
                  "operator's cost is the difference between the network with the operator on "
                  "edge 3 of every cell of one stage and the identity-cell network, over the "
                  f"cells; median over {FLAGS.rounds} interleaved rounds"),
      host=info, timing={"rounds": FLAGS.rounds, "warmup": FLAGS.warmup,
                         "min_repeat_ms": FLAGS.min_repeat_ms, "wall_s": round(wall, 1),
                         "compile_s": round(res["compile_s"], 1)},
      raw_ms={k: round(v["median"], 6) for k, v in res["raw_ms"].items()})
  latency.save_profile(profile, FLAGS.out)
  t = np.asarray(res["cell_stage_op_ms"])
  print("ms per cell  " + " ".join(f"{o:>13s}" for o in profile.table["ops"]))
  for s in range(3):
    print(f"stage {s}      " + " ".join(f"{v:13.4f}" for v in t[s]))
  print(f"overhead {res['overhead_ms']:.4f} ms, zero-output network {res['zero_output_ms']:.4f} ms")
  return {"out": FLAGS.out, "overhead_ms": res["overhead_ms"],
          "zero_output_ms": res["zero_output_ms"], "cell_stage_op_ms": t.round(6).tolist(),
          "wall_s": round(wall, 1), "host": info}


def cmd_measure():
  from monas_jax import benchmark, space
  from monas_jax.hardware import calibration, latency, profiling
  if FLAGS.cells < 1 or FLAGS.cells > space.NUM_CELLS:
    raise app.UsageError(f"--cells must be in [1, {space.NUM_CELLS}], got {FLAGS.cells}")
  profile = latency.load_profile(FLAGS.profile) if FLAGS.profile else None
  info = _host_info()
  idx = np.sort(np.random.default_rng(FLAGS.seed).choice(space.NUM_CELLS, FLAGS.cells,
                                                         replace=False))
  ops = benchmark.load_table().ops[idx]
  t0 = time.perf_counter()
  done = []

  def progress(_):
    done.append(1)
    if len(done) % 10 == 0:
      logging.info("compiled %d/%d networks", len(done), len(ops))

  res = profiling.measure_networks([tuple(o) for o in ops], seed=FLAGS.seed, warmup=FLAGS.warmup,
                                   rounds=FLAGS.rounds, min_repeat_s=FLAGS.min_repeat_ms / 1e3,
                                   progress=progress)
  wall = time.perf_counter() - t0
  if hasattr(os, "getloadavg"):
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
  archs = [space.ops_to_arch_str(o) for o in ops]
  if FLAGS.out:
    calibration.write_measurements(FLAGS.out, archs, res["latency_ms"])
  out = {"n_cells": int(len(ops)), "seed": FLAGS.seed, "nb201_index": idx.tolist(),
         "median_ms": float(np.median(res["latency_ms"])), "wall_s": round(wall, 1),
         "compile_s": round(res["compile_s"], 1), "out": FLAGS.out, "host": info}
  if profile is not None:
    pred = latency.estimate_many_ms(profile, ops)
    out = {**calibration.rank_metrics(pred, res["latency_ms"]), "profile": profile.name, **out}
    print(f"{profile.name} vs measured ({len(ops)} cells): tau {out['kendall_tau']:.4f} "
          f"rho {out['spearman_rho']:.4f} mape {out['mape']:.2f}%")
  return out


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f"usage: python -m experiments.latency {{{'|'.join(COMMANDS)}}} [flags]")
  try:
    result = globals()[f"cmd_{argv[1]}"]()
  except ValueError as err:  # bad input files or profiles: a clear message, no traceback
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
  print(json.dumps({"command": argv[1], **result}))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
