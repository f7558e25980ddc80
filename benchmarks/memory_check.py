r"""The memory model meets the exported int8 models: estimate vs ONNX, per cell.

  python benchmarks/memory_check.py [--cells=12] [--out=runs/memory_check]
  python benchmarks/memory_check.py --image_size=64 --image_channels=1 --channels=8 \
      --cells_per_stage=3 --out=runs/memory_check-64g-c8n3      # a second size (issue 22)

For each cell (the CIFAR-10 and CIFAR-100 optima, a pooling-and-skip cell, a cell whose output is
zero, then random cells) it exports the CIFAR-10 network (C=16, N=5 on 32x32 RGB unless given;
the bundled images resized with data.fit_images; initialisation weights: sizes do not depend on
the values) to ONNX and int8 (monas_jax.export), and compares
``hardware.memory.deployment_memory`` with
- flash: the bytes of the int8 model's initializers (int8 weights, int32 biases, float32 scales
  and zero points), and the same less what the QDQ format stores that a runtime does not
  (``qdq_overhead``: zero points, bias scales);
- peak SRAM: the liveness peak of the exported graph's activations at one byte an element.
Prints a markdown table and writes ``OUT/memory_check.json``.
"""
import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax import data, export, io, space, train  # noqa: E402
from monas_jax.hardware import memory  # noqa: E402

FIXED = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|none~2|",
]


def qdq_overhead(int8_path):
  """Bytes of the int8 QDQ model that a deployed int8 runtime does not store: zero points
  (all 0: symmetric weights, int32 biases) and bias scales (each the product of an input and a
  weight scale, recomputed at conversion)."""
  import onnx
  from onnx import numpy_helper
  total = 0
  for t in onnx.load(int8_path).graph.initializer:
    if t.name.endswith("_zero_point") or ("bias" in t.name and t.name.endswith("_scale")):
      total += numpy_helper.to_array(t).nbytes
  return int(total)


def sized_config(dataset: str, image_size: int, image_channels: int, channels: int,
                 cells_per_stage: int):
  """(train config, DataSpec, 16 normalised sample images) of the C, N network on ``dataset``'s
  classes at another input size: the bundled CIFAR-10 sample resized, with CIFAR-10's
  statistics (they only scale the calibration images, which do not change any size)."""
  c = train.default_config(dataset)
  c.train.channels, c.train.cells_per_stage = channels, cells_per_stage
  c.image_size, c.image_channels = image_size, image_channels
  c.norm_mean = tuple(data.MEAN["cifar10"])[:image_channels]
  c.norm_std = tuple(data.STD["cifar10"])[:image_channels]
  spec = data.config_spec(c)
  x, _, _ = data.load_images("cifar10", None)
  x = data.fit_images(x[:16], image_size, image_channels, "the bundled sample")
  return c, spec, np.asarray(data.normalize(x, spec))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--cells", type=int, default=12)
  ap.add_argument("--out", default="runs/memory_check")
  ap.add_argument("--image_size", type=int, default=32)
  ap.add_argument("--image_channels", type=int, default=3, choices=(1, 3))
  ap.add_argument("--channels", type=int, default=16)
  ap.add_argument("--cells_per_stage", type=int, default=5)
  a = ap.parse_args()
  rng = np.random.default_rng(0)
  archs = [space.Arch.from_string(s) for s in FIXED]
  while len(archs) < a.cells:
    archs.append(space.Arch(tuple(int(o) for o in rng.integers(0, space.NUM_OPS, space.NUM_EDGES))))
  c, spec, xn = sized_config("cifar10", a.image_size, a.image_channels, a.channels,
                             a.cells_per_stage)
  rows = []
  for i, arch in enumerate(archs):
    net = train.make_network(c, arch)
    st = train.init_state(c, net, train.make_optimizer(c, 1), jax.random.key(i))
    rec = export.export_cell(ops=arch.ops, params=jax.device_get(st.params),
                             batch_stats=jax.device_get(st.batch_stats), channels=a.channels,
                             cells_per_stage=a.cells_per_stage, num_classes=10, check_images=xn[:2],
                             calibration_images=xn, out_dir=os.path.join(a.out, f"cell{i}"))
    est = memory.deployment_memory(arch, spec, a.channels, a.cells_per_stage)
    row = {"arch_str": arch.to_string(), "max_abs_diff": rec["max_abs_diff"],
           "flash_estimate": est["flash_bytes_int8"], "flash_onnx": rec["int8_bytes"],
           "flash_onnx_by_dtype": rec["weight_bytes_by_dtype"],
           "sram_estimate": est["peak_sram_bytes_int8"], "sram_onnx": rec["peak_sram_bytes_int8"],
           "peak_node": rec["peak_node"], "flash_qdq_overhead": qdq_overhead(rec["int8_path"])}
    rows.append(row)
    dep = row["flash_onnx"] - row["flash_qdq_overhead"]
    print(f"| `{arch.to_string()}` | {row['flash_estimate']} | {row['flash_onnx']} | {dep} | "
          f"{100 * (row['flash_estimate'] / dep - 1):+.1f} % | "
          f"{row['sram_estimate']} | {row['sram_onnx']} | "
          f"{100 * (row['sram_estimate'] / row['sram_onnx'] - 1):+.1f} % |", flush=True)
  network = {k: getattr(a, k) for k in ("image_size", "image_channels", "channels",
                                         "cells_per_stage")}
  io.write_json_atomic(os.path.join(a.out, "memory_check.json"),
                       {"rows": rows, "network": network, **io.environment()})


if __name__ == "__main__":
  main()
