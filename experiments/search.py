r"""MONAS hardware-aware pruning search: the main command.

  python -m experiments.search --config=configs/cifar100.py [--workdir=runs/cifar100]
  python -m experiments.search --config=configs/cifar10.py:smoke --workdir=/tmp/smoke
  python -m experiments.search --config=configs/cifar10.py --config.search.latency_weight=0.8

Checkpoints after every round (``checkpoint.json``); re-running with the same workdir resumes
and gives the same cell. Writes ``result.json`` atomically and prints a summary.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
import time

from absl import app, flags
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
import tqdm

from experiments import cli
from monas_jax import config as config_lib, data, io, search, space
from monas_jax.describe import describe_cell

CHECKPOINT = "checkpoint.json"
RESULT = "result.json"


def config_hash(config) -> str:
  """Hash of everything that changes the search's outcome (not the scoring-space fields)."""
  d = json.loads(config.to_json())
  for k in ("num_cells", "shard_index", "num_shards", "score", "runtime"):
    d.pop(k, None)
  return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class _Progress:
  """One tqdm bar per (round, indicator, repeat) over the masks evaluated; silent when quiet."""

  def __init__(self, quiet: bool):
    self.quiet = quiet
    self.bar = None
    self.key = None

  def __call__(self, round, indicator, repeat, repeats, done, total):  # noqa: A002
    if self.quiet:
      return
    key = (round, indicator, repeat)
    if key != self.key:
      self.close()
      self.key = key
      self.bar = tqdm.tqdm(total=total, unit="mask", leave=False, file=sys.stderr,
                           desc=f"round {round} {indicator} repeat {repeat}/{repeats}")
    self.bar.update(done - self.bar.n)

  def close(self):
    if self.bar is not None:
      self.bar.close()
      self.bar = None


def run(config, workdir: str, quiet: bool = True, echo=print) -> dict:
  """Runs (or resumes) a search in ``workdir`` and returns the result record (also written).

  The images are read and checked first (``data.read_config_images``); the config is then
  completed with what they give (classes, normalisation statistics: ``data.resolve_config``),
  and that is the config hashed, searched with and recorded.
  """
  config_lib.validate(config)
  images = data.read_config_images(config)
  config = data.resolve_config(config, images.spec)
  images_np, labels_np, source = images.x_train, images.y_train, images.source
  os.makedirs(workdir, exist_ok=True)
  ckpt_path = os.path.join(workdir, CHECKPOINT)
  chash = config_hash(config)
  if config.data_dir is None:
    echo(f"data: no config.data_dir given, using the bundled sample ({source})")
  else:
    echo(f"data: {source}")
  echo(data_line(images.record))
  timings = {"start": time.time()}
  cache_before = cli.compilation_cache_info()

  state = search.initial_state(config.seed, search.excluded_ops(config))
  previous_seconds = {"compile": 0.0, "compute": 0.0}
  if os.path.exists(ckpt_path):
    with open(ckpt_path) as f:
      ck = json.load(f)
    if ck.get("config_hash") != chash:
      raise ValueError(f"{ckpt_path} was written by a different config (hash "
                       f"{ck.get('config_hash')} != {chash}); use a new --workdir or delete it")
    state = search.SearchState.from_json(ck["state"])
    previous_seconds = ck.get("seconds", previous_seconds)
    echo(f"resuming from {ckpt_path}: {state.round} round(s) done")

  budget = search.budget_from_config(config)
  budget.check_reachable(state.mask)  # fail before compiling anything
  t = time.perf_counter()
  settings = search.make_settings(config, jnp.asarray(images_np), source,
                                  labels=jnp.asarray(labels_np))
  compile_s = settings.compile_seconds
  setup_s = time.perf_counter() - t - compile_s
  evs = (list(settings.evaluators.values()) if isinstance(settings.evaluators, dict)
         else [ev for _, ev in settings.evaluators + settings.rerank])
  compute_before = sum(ev.compute_seconds for ev in evs)

  def seconds():
    return {"compile": previous_seconds["compile"] + compile_s,
            "compute": previous_seconds["compute"] - compute_before
                       + sum(ev.compute_seconds for ev in evs)}

  def checkpoint(s):
    progress.close()
    io.write_json_atomic(ckpt_path, {"config_hash": chash, "state": s.to_json(),
                                     "seconds": seconds()})
    last = s.history[-1]
    if last.get("kind") == "final":
      n, r = len(last["cells"]), last.get("rerank")
      again = (f", re-ranked the best {r['top']} with {'+'.join(r['indicators'])}" if r else "")
      echo(f"round {s.round}: scored the {n} remaining cells{again}, kept "
           f"{space.Arch.from_mask(s.mask).to_string()}; checkpoint written")
    else:
      pruned = ", ".join(f"e{p['edge']}:{p['op']}" for p in last["pruned"])
      scored = f"scored {len(last['evaluated'])} new cells, " if "evaluated" in last else ""
      echo(f"round {s.round}: {scored}pruned {pruned}; checkpoint written")

  progress = _Progress(quiet)
  try:
    state = search.run(state, settings, on_round=checkpoint, progress=progress)
  finally:
    progress.close()
  arch = space.Arch.from_mask(state.mask)
  cell = describe_cell(arch, images.spec, config.network.channels,
                       config.network.cells_per_stage)
  env = io.environment()
  result = {
      "arch_str": arch.to_string(),
      "mask": np.asarray(state.mask).astype(int).tolist(),
      "cell": cell,
      "rounds": list(state.history),
      "evaluations": evaluations(state.history, config.search.mode),
      "seconds": {**seconds(), "setup": setup_s, "wall": time.time() - timings["start"]},
      # Persistent compilation cache: on, where, and this run's compiles that asked it / hit.
      "compilation_cache": {k: (v - cache_before[k] if k in ("requests", "hits") else v)
                            for k, v in cli.compilation_cache_info().items()},
      "seed": config.seed,
      "data_source": source,
      "data": images.record,
      **env,
      "config": json.loads(config.to_json()),
      "config_hash": chash,
      "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }
  io.write_json_atomic(os.path.join(workdir, RESULT), result)
  echo(summary(result))
  return result


def evaluations(history, mode: str) -> int:
  """Masks a search evaluated (each at every repeat counts once): mode ensemble's single cells
  (and candidate supernets of its 'supernet' strategy), or mode monas's candidates plus the
  current supernet per round."""
  if mode == "ensemble":
    return search.ensemble.evaluations(history)
  return sum(len(r.get("candidates", ())) + 1 for r in history)


def data_line(record: dict) -> str:
  """One line on a search's images: classes, statistics and skipped files."""
  names = record["classes"]
  shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
  mean = ", ".join(f"{v:.3f}" for v in record["norm_mean"])
  std = ", ".join(f"{v:.3f}" for v in record["norm_std"])
  line = (f"data: {record['num_classes']} classes ({shown}), {record['image_size']}x"
          f"{record['image_size']}x{record['channels']}, normalised with mean ({mean}) std "
          f"({std}), {record['norm_stats']}")
  if record["skipped_files"]:
    line += (f"; skipped {record['skipped_files']} file(s) that are not .png/.jpg/.jpeg/.bmp "
             f"(e.g. {record['skipped_examples'][0]})")
  return line


def summary(result: dict) -> str:
  c = result["cell"]
  s = result["seconds"]
  lat = "  ".join(f"{k} {v:.2f}" for k, v in c["latency_ms"].items())
  if any(v.startswith("scaled") for v in c.get("latency_provenance", {}).values()):
    lat += " (scaled by operator cost from the size the tables were measured at: an estimate)"
  acc = (f"{c['cifar10_test_acc']:.2f} / {c['cifar100_test_acc']:.2f} / "
         f"{c['imagenet16_120_test_acc']:.2f}" if "ground_truth" not in c else c["ground_truth"])
  rows = [
      ("cell", result["arch_str"]),
      ("NB201 index", str(c["nb201_index"])),
      ("test acc % (C10/C100/IN16)", acc),
      ("FLOPs / params", f"{c['flops_M']:.2f} M / {c['params_M']:.3f} M"),
      ("int8 .tflite / TFLM arena", f"{c['tflite_bytes'] / 1024:.0f} KiB / "
                                    f"{c['tflm_arena_bytes'] / 1024:.0f} KiB (predicted; a "
                                    f"Cortex-M's {c['tflm_arena_bytes_cortex_m'] / 1024:.0f} KiB; "
                                    f"ONNX graph {c['flash_bytes_int8'] / 1024:.0f} / "
                                    f"{c['peak_sram_bytes_int8'] / 1024:.0f} KiB)"),
      ("fits (TFLM)", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in c["fits"].items())),
      ("latency ms", lat),
      ("search time", f"{s['compile']:.1f} s compile + {s['compute']:.1f} s compute "
                      f"({s['wall']:.1f} s wall) on {result['device']['platform']}, "
                      f"{result.get('evaluations', '?')} evaluations"),
      ("compilation cache", _cache_line(result.get("compilation_cache"))),
  ]
  w = max(len(k) for k, _ in rows)
  return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def _cache_line(c) -> str:
  if not c or not c["enabled"]:
    return "off"
  return f"{c['dir']} ({c['hits']} of {c['requests']} compiles served from it)"


def main(argv):
  del argv
  config = cli.validated(flags.FLAGS.config)
  cli.setup_runtime(config)
  workdir = flags.FLAGS.workdir or os.path.join("runs", f"{config.dataset}-seed{config.seed}")
  cli.run_or_exit(run, config, workdir, quiet=flags.FLAGS.quiet)
  print(f"result: {os.path.join(workdir, RESULT)}")


if __name__ == "__main__":
  # Flags are defined only when run as a command, so other commands can import run().
  config_flags.DEFINE_config_file("config", "configs/cifar100.py", "Config file.")
  flags.DEFINE_string("workdir", None, "Output folder (default runs/<dataset>-seed<seed>).")
  flags.DEFINE_bool("quiet", False, "No progress bars.")
  app.run(main, flags_parser=cli.parse_flags)
