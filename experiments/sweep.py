r"""Searches over seeds and weights, and the paper's results table.

  python -m experiments.sweep --config=configs/cifar10.py --workdir=runs/sweep-c10 \
      [--seeds=0,1,2,3,4] [--settings=baseline,lambda0.7,mu0.5,mu0.6,mu0.7,mu0.8]

Each (setting, seed) runs ``experiments.search`` in ``workdir/<setting>/seed<seed>`` (finished
runs are reused, interrupted ones resume). Compiled indicators are shared by all runs of the
process, and a seed's first round, identical across weights, is computed once. Writes
``sweep.md``, ``sweep.csv`` and ``sweep.json`` (mean and std over seeds per setting) and
``accuracy_vs_latency.png`` (found cells over the benchmark's Pareto front of all 15,625 cells).
The speedup columns compare each run with the 'baseline' run of its seed; a sweep without the
baseline setting (e.g. budgets only) leaves them out.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import re

from absl import app, flags
from ml_collections import config_flags
import numpy as np

from experiments import cli, search as search_cmd
from monas_jax import benchmark, config as config_lib, data, io
from monas_jax.hardware import latency


MCUS = ("stm32f746", "stm32l432")
ACC = ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc")


def parse_setting(name: str) -> tuple[float, float]:
  """'baseline' -> (0, 0); 'lambda0.7' -> (0.7, 0); 'mu0.8' -> (0, 0.8); 'budget12' -> (0, 0)
  (a latency budget, see parse_budget)."""
  if name == "baseline" or parse_budget(name) is not None:
    return 0.0, 0.0
  m = re.fullmatch(r"(lambda|mu)([0-9.]+)", name)
  if not m:
    raise ValueError(f"setting {name!r} is not 'baseline', 'lambda<w>', 'mu<w>' (e.g. mu0.8) or "
                     "'budget<ms>' (e.g. budget12)")
  w = float(m.group(2))
  if not 0 <= w < 1:
    raise ValueError(f"setting {name!r}: weight must be in [0, 1)")
  return (w, 0.0) if m.group(1) == "lambda" else (0.0, w)


def parse_budget(name: str) -> float | None:
  """'budget12' -> 12.0 (ms on hardware.profile); None for other settings."""
  m = re.fullmatch(r"budget([0-9.]+)", name)
  if not m:
    return None
  ms = float(m.group(1))
  if not ms > 0:
    raise ValueError(f"setting {name!r}: the budget must be a positive number of ms")
  return ms


def best_no_slower(lat_all: np.ndarray, acc_all: np.ndarray, lat: float) -> float:
  """Best accuracy among all cells whose latency is at most ``lat`` (the Pareto reference)."""
  ok = lat_all <= lat + 1e-9
  return float(acc_all[ok].max()) if ok.any() else float("nan")


def pareto_gaps(res: dict, profile: str, budget_ms: float | None = None) -> dict[str, float]:
  """Accuracy points between a found cell and the best cell no slower on ``profile`` (and the
  best within the budget, when one was set), per dataset: ``gap_<acc column>`` and
  ``budget_gap_<acc column>``."""
  t = benchmark.load_table()
  lat_all = _latency_all(profile)
  from monas_jax import space
  lat = float(latency.estimate_many_ms(profile, np.array([space.parse_arch_str(res["arch_str"])]))[0])
  out = {}
  for a in ACC:
    acc_all = t.columns[a]
    out[f"gap_{a}"] = best_no_slower(lat_all, acc_all, lat) - res["cell"][a]
    if budget_ms is not None:
      out[f"budget_gap_{a}"] = best_no_slower(lat_all, acc_all, budget_ms) - res["cell"][a]
  return out


_LAT_CACHE: dict = {}


def _latency_all(profile: str) -> np.ndarray:
  if profile not in _LAT_CACHE:
    _LAT_CACHE[profile] = latency.estimate_many_ms(profile, benchmark.load_table().ops)
  return _LAT_CACHE[profile]


def check_ground_truth(config) -> None:
  """A sweep reports the found cells' NAS-Bench-201 accuracies: one-line ValueError where the
  config's dataset, input or network has none (a user's folder, another size, C or N)."""
  from monas_jax.describe import ground_truth_unavailable
  try:
    reason = ground_truth_unavailable(data.config_spec(config), config.network.channels,
                                      config.network.cells_per_stage)
  except ValueError:  # a user's dataset, or another size or channels: read only by a search
    reason = (f"no ground truth for dataset {config.dataset!r} at "
              f"{data.image_size_of(config)}x{data.image_size_of(config)}x"
              f"{config.image_channels}")
  if reason:
    raise ValueError(f"experiments.sweep compares the cells' NAS-Bench-201 accuracies: {reason}; "
                     "run experiments.search for each setting instead")


def run(config, workdir: str, seeds, settings, echo=print) -> dict:
  """Runs every (setting, seed) search and writes the tables and the plot."""
  config_lib.validate(config)
  check_ground_truth(config)
  weights = {s: parse_setting(s) for s in settings}  # fail on a bad name before any compute
  runs: dict[str, list[dict]] = {s: [] for s in settings}
  said_data = []

  def search_echo(line):  # the data-source line once, the rest of a search's lines silent
    if line.startswith("data:") and not said_data:
      said_data.append(line)
      echo(line)

  for seed in seeds:  # seed outermost: the first round's indicator values are reused
    for s in settings:
      c = copy.deepcopy(config)
      c.seed = int(seed)
      c.search.flops_weight, c.search.latency_weight = weights[s]
      if parse_budget(s) is not None:
        c.search.latency_budget_ms = parse_budget(s)
      wd = os.path.join(workdir, s, f"seed{seed}")
      res_path = os.path.join(wd, search_cmd.RESULT)
      res = None
      if os.path.exists(res_path):
        res = io.read_json(res_path, "a search's result.json")
        if "arch_str" not in res:
          raise io.refuse(res_path, "a search's result.json", "no 'arch_str' field")
        if res.get("config_hash") != search_cmd.config_hash(c):
          raise ValueError(f"{res_path} comes from a different config; use a new --workdir")
        echo(f"[{s} seed {seed}] done before: {res['arch_str']}")
      else:
        echo(f"[{s} seed {seed}] searching")
        res = search_cmd.run(c, wd, quiet=True, echo=search_echo)
        echo(f"[{s} seed {seed}] {res['arch_str']}  {config.dataset} acc "
             f"{res['cell'][search_cmd_acc(config)]:.2f}  stm32f746 "
             f"{res['cell']['latency_ms']['stm32f746']:.2f} ms  "
             f"({res['seconds']['compile']:.0f} s compile, {res['seconds']['compute']:.0f} s compute)")
      res["pareto"] = pareto_gaps(res, c.hardware.profile, c.search.latency_budget_ms)
      runs[s].append(res)
  rows = aggregate(runs)
  write_tables(workdir, config, rows, seeds)
  plot(os.path.join(workdir, "accuracy_vs_latency.png"), config, runs)
  echo(markdown(config, rows, seeds))
  return rows


def search_cmd_acc(config) -> str:
  return benchmark.ACC_COLUMN[config.dataset]


def aggregate(runs: dict[str, list[dict]]) -> dict[str, dict]:
  """Mean and std over seeds per setting; speedup is per seed against the baseline's cell (left
  out where the sweep has no baseline run of that seed)."""
  base = {r["seed"]: r for r in runs.get("baseline", [])}
  rows = {}
  for s, rs in runs.items():
    cols: dict[str, list[float]] = {}

    def add(k, v):
      cols.setdefault(k, []).append(float(v))

    for r in rs:
      c = r["cell"]
      add("flops_M", c["flops_M"])
      add("params_M", c["params_M"])
      for m in MCUS:
        add(f"latency_{m}_ms", c["latency_ms"][m])
        if r["seed"] in base:
          add(f"speedup_{m}", base[r["seed"]]["cell"]["latency_ms"][m] / c["latency_ms"][m])
      add("search_s", r["seconds"]["compile"] + r["seconds"]["compute"])
      add("compute_s", r["seconds"]["compute"])
      for a in ACC:
        add(a, c[a])
      for k, v in r.get("pareto", {}).items():
        add(k, v)
    # Sample standard deviation over seeds (ddof = 1; 0 for a single seed).
    rows[s] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1
                   else 0.0, "values": v} for k, v in cols.items()}
    rows[s]["data_source"] = sorted({r.get("data_source", "?") for r in rs})
    rows[s]["cells"] = [r["arch_str"] for r in rs]
  return rows


COLUMNS = [("FLOPs (M)", "flops_M", 1), ("Params (M)", "params_M", 3),
           ("F746 lat. (ms)", "latency_stm32f746_ms", 2), ("F746 speedup", "speedup_stm32f746", 2),
           ("L432 lat. (ms)", "latency_stm32l432_ms", 1), ("L432 speedup", "speedup_stm32l432", 2),
           ("Search (s)", "search_s", 0), ("C10 acc", "cifar10_test_acc", 2),
           ("C100 acc", "cifar100_test_acc", 2), ("IN16 acc", "imagenet16_120_test_acc", 2),
           ("C10 Pareto gap", "gap_cifar10_test_acc", 2),
           ("C100 Pareto gap", "gap_cifar100_test_acc", 2),
           ("IN16 Pareto gap", "gap_imagenet16_120_test_acc", 2),
           ("C10 budget gap", "budget_gap_cifar10_test_acc", 2)]


def markdown(config, rows, seeds) -> str:
  head = "| setting | " + " | ".join(c[0] for c in COLUMNS) + " |"
  sources = sorted({x for r in rows.values() for x in r.get("data_source", [])})
  lines = [f"Searched on {config.dataset} (mode {config.search.mode}), {len(seeds)} seeds, mean "
           "± sample std (ddof 1); data: " + "; ".join(sources) + ". Latency is the "
           "lookup-table estimate; Pareto gap = best NAS-Bench-201 accuracy among the 15,625 "
           f"cells no slower on {config.hardware.profile} minus the found cell's; budget gap = "
           "best within the budget minus the found cell's. Search time is per run (compile + "
           "compute, compiled indicators shared across the runs of a sweep).", "", head,
           "|" + " --- |" * (len(COLUMNS) + 1)]
  for s, r in rows.items():
    cells = [f"{r[k]['mean']:.{d}f} ± {r[k]['std']:.{d}f}" if k in r else "–"
             for _, k, d in COLUMNS]
    lines.append(f"| {s} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_tables(workdir, config, rows, seeds):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "sweep.md"), "w") as f:
    f.write(markdown(config, rows, seeds))
  tmp = os.path.join(workdir, ".sweep.csv.tmp")
  with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["setting"] + [f"{k}_{s}" for _, k, _ in COLUMNS for s in ("mean", "std")])
    for s, r in rows.items():
      w.writerow([s] + [f"{r[k][x]:.6g}" if k in r else "" for _, k, _ in COLUMNS
                        for x in ("mean", "std")])
  os.replace(tmp, os.path.join(workdir, "sweep.csv"))
  io.write_json_atomic(os.path.join(workdir, "sweep.json"),
                       {"dataset": config.dataset, "seeds": list(seeds), "rows": rows,
                        "std": "sample standard deviation over seeds (ddof 1)",
                        "config": json.loads(config.to_json()), **io.environment()})


def pareto_front(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
  """Indices of cells no other cell beats in both latency (lower) and accuracy (higher)."""
  order = np.lexsort((-acc, lat))
  front, best = [], -np.inf
  for i in order:
    if acc[i] > best:
      front.append(i)
      best = acc[i]
  return np.array(front)


def plot(path, config, runs):
  """Left: found cells over the benchmark's accuracy-latency front; right: Pareto gaps."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  acc = benchmark.test_accuracy(config.dataset)
  prof = config.hardware.profile
  lat = _latency_all(prof)
  front = pareto_front(lat, acc)
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  ax.scatter(lat, acc, s=2, c="lightgrey", label="all 15,625 cells")
  ax.plot(lat[front], acc[front], "-", c="black", lw=1, label="Pareto front")
  from monas_jax import space
  for s, rs in runs.items():
    ops = np.array([space.parse_arch_str(r["arch_str"]) for r in rs])
    ax.scatter(latency.estimate_many_ms(prof, ops),
               [r["cell"][benchmark.ACC_COLUMN[config.dataset]] for r in rs], s=30, label=s)
  ax.set(xlabel=f"estimated latency on {prof} (ms)",
         ylabel=f"{config.dataset} test accuracy (%)",
         title=f"{config.search.mode} search on {config.dataset}")
  ax.set_ylim(max(0, float(np.percentile(acc, 5))), float(acc.max()) + 1)
  ax.legend(fontsize=8, loc="lower right")
  names = list(runs)
  x = np.arange(len(names))
  for j, (a, lab) in enumerate(zip(ACC, ("C10", "C100", "IN16"))):
    g = [[r["pareto"][f"gap_{a}"] for r in runs[s] if "pareto" in r] for s in names]
    ax2.bar(x + (j - 1) * 0.27, [np.mean(v) if v else np.nan for v in g], 0.27,
            yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in g], label=lab, capsize=2)
  ax2.set_xticks(x, names, rotation=30, fontsize=8)
  ax2.set(ylabel="Pareto gap (accuracy points)",
          title=f"best no-slower cell minus found cell ({prof})")
  ax2.legend(fontsize=8)
  for a_ in (ax, ax2):
    a_.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  config = cli.validated(flags.FLAGS.config)
  cli.setup_runtime(config)
  seeds = cli.run_or_exit(lambda: [int(s) for s in flags.FLAGS.seeds])
  workdir = flags.FLAGS.workdir or os.path.join("runs", f"sweep-{config.dataset}")
  cli.run_or_exit(run, config, workdir, seeds, flags.FLAGS.settings)


if __name__ == "__main__":
  # Flags are defined only when run as a command, so tests and other commands can import.
  config_flags.DEFINE_config_file("config", "configs/cifar10.py", "Config file.")
  flags.DEFINE_string("workdir", None, "Output folder (default runs/sweep-<dataset>).")
  flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds.")
  flags.DEFINE_list("settings", ["baseline", "lambda0.7", "mu0.5", "mu0.6", "mu0.7", "mu0.8"],
                    "baseline (accuracy only; needed for the speedup columns), lambda<w> (FLOPs "
                    "weight), mu<w> (latency), budget<ms> (latency budget on hardware.profile).")
  app.run(main, flags_parser=cli.parse_flags)
