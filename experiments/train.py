r"""Train a cell's network (NAS-Bench-201 recipe by default); resumable.

  python -m experiments.train --arch='|nor_conv_3x3~0|+|...|' [--workdir=runs/train-7632]
  python -m experiments.train --from_result=runs/c100/result.json --config.train.epochs=1
  python -m experiments.train --config=configs/train.py:cifar100 --config.data_dir=/data/c100 ...

Writes ``checkpoint.npz`` every epoch (and every ``train.checkpoint_every_steps`` steps),
``metrics.jsonl`` and ``metrics.png``; at the end ``result.json`` with the final accuracy and the
seconds per epoch and per step. Running it again with the same workdir continues from the
checkpoint to the same parameters as an uninterrupted run.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import cli
from monas_jax import benchmark, io, space, train


def read_arch(arch: str | None, from_result: str | None) -> space.Arch:
  """The cell of ``--arch`` or of a search's ``result.json``; exactly one must be given."""
  return read_search(arch, from_result)[0]


def read_search(arch: str | None, from_result: str | None) -> tuple[space.Arch, dict]:
  """(cell, the search's config as a dict, or {} with --arch) of ``--arch`` or a result.json."""
  if bool(arch) == bool(from_result):
    raise ValueError("give exactly one of --arch='|op~0|+|...|' or --from_result=DIR/result.json")
  if arch:
    return space.Arch.from_string(arch), {}
  path = os.path.join(from_result, "result.json") if os.path.isdir(from_result) else from_result
  what = "a search's result.json (with 'arch_str')"
  try:
    rec = io.read_json(path, what)
  except OSError as e:
    raise ValueError(f"cannot read --from_result: {e}") from None
  if "arch_str" not in rec:
    raise io.refuse(path, what, "no 'arch_str' field")
  try:
    return space.Arch.from_string(rec["arch_str"]), rec.get("config") or {}
  except ValueError as e:
    raise io.refuse(path, what, e) from None


def network_from_search(config, searched: dict, echo=print):
  """``config`` with C and N of the searched network (``network`` of the search's config) where
  the training config leaves NAS-Bench-201's C=16, N=5; a different explicit choice is an error
  (the hardware terms of the search were for the searched size)."""
  net = searched.get("network")
  if not net:
    return config
  t = config.train
  want = (int(net["channels"]), int(net["cells_per_stage"]))
  if (t.channels, t.cells_per_stage) == want:
    return config
  if (t.channels, t.cells_per_stage) != (16, 5):
    raise ValueError(f"config.train.channels, cells_per_stage = {t.channels}, {t.cells_per_stage}"
                     f" is not allowed: the search was for C={want[0]}, N={want[1]} "
                     "(config.network); train that size or search again")
  with config.unlocked():
    t.channels, t.cells_per_stage = want
  echo(f"network: C={want[0]}, N={want[1]}, as searched")
  return config


def summary(r: dict) -> str:
  acc = r.get("nb201_test_acc")
  rows = [
      ("cell", f"{r['arch_str']} (NB201 index {r['nb201_index']})"),
      (f"{r['eval_split']} accuracy", f"{r['final_eval_accuracy']:.2f} % after {r['epochs']} "
                                      f"epochs (best {r['best_eval_accuracy']:.2f} %)"),
      ("NB201 200-epoch test acc", f"C10 {acc['cifar10']:.2f} / C100 {acc['cifar100']:.2f} / "
                                   f"IN16 {acc['imagenet16_120']:.2f} %" if acc
                                   else r.get("ground_truth", "")),
      ("seconds per epoch / step", f"{r['seconds_per_epoch']:.2f} s / "
                                   + (f"{r['seconds_per_step']:.3f} s" if r["seconds_per_step"]
                                      else "n/a") + f" on {r['device']['platform']}"),
  ]
  w = max(len(k) for k, _ in rows)
  return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main(argv):
  del argv
  config = cli.validated(flags.FLAGS.config, train.validate_config)
  arch, searched = cli.run_or_exit(read_search, flags.FLAGS.arch, flags.FLAGS.from_result)
  config = cli.run_or_exit(network_from_search, config, searched,
                           echo=lambda s: print(s, file=sys.stderr))
  workdir = flags.FLAGS.workdir or os.path.join(
      "runs", f"train-{config.dataset}-{benchmark.index_of(arch)}-seed{config.seed}")
  split = cli.run_or_exit(train.load_split, config)
  print(f"data: {split.source}", file=sys.stderr)
  result = cli.run_or_exit(train.train_and_evaluate, config, arch, workdir, split,
                           echo=lambda s: print(s, file=sys.stderr), quiet=flags.FLAGS.quiet)
  if result is None:
    print(f"checkpoint: {os.path.join(workdir, train.CHECKPOINT)} (run again to continue)")
    return
  print(summary(result))
  print(f"result: {os.path.join(workdir, train.RESULT)}")


if __name__ == "__main__":
  # Flags are defined only when run as a command, so tests and other commands can import.
  config_flags.DEFINE_config_file("config", "configs/train.py", "Training config file.")
  flags.DEFINE_string("arch", None, "Arch string of the cell to train.")
  flags.DEFINE_string("from_result", None, "A search's result.json (or its folder).")
  flags.DEFINE_string("workdir", None, "Output folder (default runs/train-<dataset>-<index>-seed<s>).")
  flags.DEFINE_bool("quiet", False, "No progress bars.")
  app.run(main, flags_parser=cli.parse_flags)
