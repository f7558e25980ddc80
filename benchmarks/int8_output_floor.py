r"""The best top-1 agreement any int8 output can keep with an untrained network's float logits.

  python benchmarks/int8_output_floor.py [--cells=21] [--images=400]

The cells, weights and images of ``benchmarks/tflite_check.py`` (the CIFAR-100 optimum and 20
random cells, numpy seed 21; C=16, N=5 initialised with ``jax.random.key(i)``, BatchNorm
statistics of 4 sample images; the bundled sample's 400 held-out images). For each cell the JAX
float32 logits are rounded to every int8 grid a per-tensor output quantisation can have (scale
from 1e-4 to the whole logit range over 400 log-spaced steps, every zero point -128..127, values
clipped to [-128, 127], ties to the first class as an argmax of int8 logits): the best of them is
an upper bound on the agreement of any int8-output model, however well calibrated and whatever
its kernels, since the output tensor alone must represent the logits on such a grid. Pure JAX
and numpy (no TensorFlow); about 3 minutes on 2 cores.
"""
import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tflite_check  # noqa: E402  (beside this file: its cells and images)
from experiments.export import batch_statistics  # noqa: E402
from monas_jax import export, train  # noqa: E402


def best_int8_agreement(logits: np.ndarray, steps: int = 400) -> tuple[float, float, int]:
  """(best agreement, its scale, its zero point) over int8 grids of float (n, k) ``logits``."""
  top = logits.argmax(1)
  span = float(logits.max() - logits.min())
  best = (0.0, 0.0, 0)
  for s in np.geomspace(1e-4, max(span / 255, 2e-4) * 4, steps):
    base = np.round(logits / s)
    for z in range(-128, 128):
      q = np.clip(base + z, -128, 127)
      a = float(np.mean(q.argmax(1) == top))
      if a > best[0]:
        best = (a, float(s), z)
  return best


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--cells", type=int, default=21)
  ap.add_argument("--images", type=int, default=400)
  a = ap.parse_args()
  archs = tflite_check.check_cells(a.cells)
  c, spec, xcal, xev = tflite_check.sample_images(4, a.images)
  C, N = c.train.channels, c.train.cells_per_stage
  print("| # | cell | best int8-output agreement | its scale / zero point | logit std |")
  print("| --- | --- | --- | --- | --- |")
  got = []
  for i, arch in enumerate(archs):
    net = train.make_network(c, arch)
    st = train.init_state(c, net, train.make_optimizer(c, 1), jax.random.key(i))
    params = jax.device_get(st.params)
    stats = batch_statistics(net, params, st.batch_stats, xcal)
    ref = np.asarray(export.jax_logits(params, stats, arch.ops, C, N, spec.num_classes, xev))
    b, s, z = best_int8_agreement(ref)
    got.append(b)
    print(f"| {i} | `{arch.to_string()}` | {100 * b:.2f} % | {s:.3g} / {z} | {ref.std():.3f} |",
          flush=True)
  g = np.array(got)
  print(f"\nbest int8-output agreement: min {100 * g.min():.2f} %, median {100 * np.median(g):.2f} %;"
        f" cells where even the best grid stays below 98 %: {int(np.sum(g < 0.98))} of {len(g)}")


if __name__ == "__main__":
  main()
