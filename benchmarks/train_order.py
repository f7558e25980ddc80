r"""Does training train? Three cells far apart in NAS-Bench-201 accuracy, trained for the same
short budget on the bundled CIFAR-10 sample (1,600 images; evaluated on the 400 held out), and
whether their held-out order matches the benchmark's 200-epoch CIFAR-10 order.

  python benchmarks/train_order.py [--epochs=15] [--channels=16] [--cells_per_stage=1]
      [--batch_size=64] [--workdir=runs/train_order]

The cells: the CIFAR-10 optimum, the cell at the median CIFAR-10 accuracy, and a cell of
pooling and skip connections only (no convolution in the cell). The default budget is a reduced
network (C=16, N=1) so that the three runs fit in about ten minutes of a 2-core CPU; the recipe is
otherwise NAS-Bench-201's (SGD Nesterov, cosine from 0.1, weight decay 5e-4, crop and flip).
Prints a table and writes ``WORKDIR/train_order.json``.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax import benchmark, io, space, train  # noqa: E402

POOL_SKIP = "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|"


def cells():
  acc = benchmark.test_accuracy("cifar10")
  best = int(np.argmax(acc))
  order = np.argsort(acc)
  median = int(order[len(order) // 2])
  return [("optimum", benchmark.arch_at(best)), ("median", benchmark.arch_at(median)),
          ("pool+skip", space.Arch.from_string(POOL_SKIP))]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--epochs", type=int, default=15)
  ap.add_argument("--channels", type=int, default=16)
  ap.add_argument("--cells_per_stage", type=int, default=1)
  ap.add_argument("--batch_size", type=int, default=64)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--workdir", default="runs/train_order")
  a = ap.parse_args()
  c = train.default_config("cifar10")
  c.seed = a.seed
  c.train.epochs, c.train.channels = a.epochs, a.channels
  c.train.cells_per_stage, c.train.batch_size = a.cells_per_stage, a.batch_size
  train.validate_config(c)
  split = train.load_split(c)
  print(f"data: {split.source}", flush=True)
  rows = []
  for name, arch in cells():
    t0 = time.time()
    r = train.train_and_evaluate(c, arch, os.path.join(a.workdir, name.replace("+", "_")), split,
                                 echo=lambda s: None, quiet=True)
    gt = benchmark.lookup(arch)
    rows.append({"name": name, "arch_str": arch.to_string(), "nb201_index": gt["nb201_index"],
                 "nb201_cifar10_test_acc": gt["cifar10_test_acc"],
                 "held_out_acc": r["final_eval_accuracy"], "best_held_out_acc": r["best_eval_accuracy"],
                 "held_out_loss": r["final_eval_loss"], "seconds": time.time() - t0,
                 "seconds_per_step": r["seconds_per_step"]})
    print(f"{name:10s} NB201 {gt['cifar10_test_acc']:.2f} %  held-out {r['final_eval_accuracy']:.2f} % "
          f"(best {r['best_eval_accuracy']:.2f} %, loss {r['final_eval_loss']:.3f})  "
          f"{time.time() - t0:.0f} s", flush=True)
  by_nb = [r["name"] for r in sorted(rows, key=lambda r: -r["nb201_cifar10_test_acc"])]
  by_us = [r["name"] for r in sorted(rows, key=lambda r: -r["held_out_acc"])]
  out = {"rows": rows, "nb201_order": by_nb, "held_out_order": by_us, "matches": by_nb == by_us,
         "budget": {"epochs": a.epochs, "channels": a.channels, "cells_per_stage": a.cells_per_stage,
                    "batch_size": a.batch_size, "steps": a.epochs * (len(split.y_train) // a.batch_size)},
         "data_source": split.source, **io.environment()}
  io.write_json_atomic(os.path.join(a.workdir, "train_order.json"), out)
  print(f"NB201 order {by_nb}; held-out order {by_us}: {'matches' if out['matches'] else 'DIFFERS'}")


if __name__ == "__main__":
  main()
