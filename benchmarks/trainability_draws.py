r"""AZ-NAS trainability of the cells the accuracy-only ensemble search chooses between, over draws.

  python benchmarks/trainability_draws.py [--draws=6] [--inputs=data]

The CIFAR-100 optimum (skip on edge 3<-0), the cell four of five seeds pick instead (1x1
convolution there) and the CIFAR-10 optimum, each scored with ``--draws`` keys (batch and weights)
on the bundled CIFAR-10 sample, as the search scores a cell. Whether trainability's preference
is noise (which more repeats per evaluation would average out) or systematic. ``--inputs=data``
feeds the sample's augmented images instead of AZ-NAS's N(0, 1) batch. About 2 minutes.
"""
import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax import benchmark, data, space  # noqa: E402
from monas_jax.proxies import zero_cost  # noqa: E402

CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--draws", type=int, default=6)
  ap.add_argument("--inputs", default="noise", help="noise (AZ-NAS's N(0, 1) batch) or data")
  a = ap.parse_args()
  fn = jax.jit(zero_cost.az_nas_fn(zero_cost.bench("cifar10"), inputs=a.inputs))
  images = jnp.asarray(data.load_images("cifar10", None)[0])
  print("| cell | C10 / C100 / IN16 | trainability per draw | mean ± sd |\n| --- | --- | --- | --- |")
  for arch in CELLS:
    m = jnp.asarray(space.Arch.from_string(arch).to_mask())
    col = zero_cost.GROUPS["az_nas"].index("trainability")  # az_nas returns E, P, T
    t = np.array([float(fn(m, images, jax.random.key(k))[col]) for k in range(a.draws)])
    gt = benchmark.lookup(arch)
    acc = " / ".join(f"{gt[f'{d}_test_acc']:.2f}" for d in ("cifar10", "cifar100", "imagenet16_120"))
    print(f"| `{arch}` | {acc} | {' '.join(f'{v:.3f}' for v in t)} | {t.mean():.3f} ± {t.std():.3f} |",
          flush=True)


if __name__ == "__main__":
  main()
