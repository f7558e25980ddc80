"""Everything known about one cell without training it: benchmark, cost, memory, latency."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from monas_jax import benchmark, data, space
from monas_jax.proxies import cost


def ground_truth_unavailable(dataset="cifar10", channels: int = 16,
                             cells_per_stage: int = 5) -> Optional[str]:
  """Why NAS-Bench-201's accuracies do not apply to this network, or None when they do.

  They are the accuracies of C=16, N=5 networks trained on CIFAR-10, CIFAR-100 and
  ImageNet16-120 at their native sizes in RGB; ``dataset`` is one of data.DATASETS or a
  data.DataSpec.
  """
  spec = data.as_spec(dataset)
  if (spec.name in data.DATASETS and spec.image_size == data.IMAGE_SIZE[spec.name]
      and spec.channels == 3 and channels == 16 and cells_per_stage == 5):
    return None
  return (f"no ground truth: NAS-Bench-201 trained C=16, N=5 networks on CIFAR-10, CIFAR-100 and "
          f"ImageNet16-120 at their native sizes; this is C={channels}, N={cells_per_stage} on "
          f"{spec.name} at {spec.image_size}x{spec.image_size}x{spec.channels}")


def describe_cells(archs: Sequence, dataset="cifar10", channels: int = 16,
                   cells_per_stage: int = 5) -> list[dict[str, Any]]:
  """``describe_cell`` for many cells, with each latency table applied to all cells at once."""
  from monas_jax.hardware import latency  # late: hardware imports the cost model
  spec = data.as_spec(dataset)
  cells = [space.to_arch(a) for a in archs]
  ops = np.array([a.ops for a in cells], np.int64).reshape(-1, space.NUM_EDGES)
  profiles = [latency.network_profile(n, spec, channels, cells_per_stage)
               for n in latency.builtin_profiles()]
  lat = {p.name: latency.estimate_many_ms(p, ops) for p in profiles}
  provenance = {p.name: latency.latency_provenance(p) for p in profiles}
  out = []
  for i, a in enumerate(cells):
    rec = _base_record(a, spec, channels, cells_per_stage)
    rec["latency_ms"] = {n: float(v[i]) for n, v in lat.items()}
    rec["latency_provenance"] = provenance
    # The int8 TFLite deployment, as `experiments.export --format=tflite` measures it in TFLM.
    rec["fits"] = {p.name: latency.fits_memory(p, rec["tflite_bytes"], rec["tflm_arena_bytes"])
                   for p in profiles if p.kind == "mcu"}
    out.append(rec)
  return out


def _base_record(a: space.Arch, spec: data.DataSpec, channels: int, cells_per_stage: int
                 ) -> dict[str, Any]:
  gt = benchmark.lookup(a)
  out: dict[str, Any] = {
      "arch_str": gt["arch_str"], "nb201_index": gt["nb201_index"], "ops": list(a.names),
      "dataset": spec.name,
      "flops_M": round(cost.flops_M(a, spec, channels, cells_per_stage), 6),
      "params_M": round(cost.params_M(a, spec, channels, cells_per_stage), 6)}
  out.update(cost.deployment_memory(a, spec, channels, cells_per_stage))
  missing = ground_truth_unavailable(spec, channels, cells_per_stage)
  if missing is None:
    for name in ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"):
      out[name] = gt[name]
  else:
    # Said once, here, instead of three accuracies that belong to another network.
    out["ground_truth"] = missing
    out["network"] = {"channels": channels, "cells_per_stage": cells_per_stage,
                      "image_size": spec.image_size, "image_channels": spec.channels,
                      "num_classes": spec.num_classes}
  return out


def describe_cell(arch, dataset="cifar10", channels: int = 16,
                  cells_per_stage: int = 5) -> dict[str, Any]:
  """One JSON-able record of a cell (Arch, arch string, operator tuple or one-hot mask).

  Args:
    arch: the cell.
    dataset: one of data.DATASETS or a data.DataSpec (input side and channels, classes).
    channels, cells_per_stage: C and N of the deployed network.

  Keys: ``arch_str``, ``nb201_index``, ``ops``, ``dataset``, ``flops_M`` and ``params_M`` (the
  C, N network on ``dataset``'s input), the memory fields of ``cost.deployment_memory`` (bytes),
  the benchmark's 200-epoch test accuracies (%) where they apply (NAS-Bench-201's datasets at
  their native sizes, C=16, N=5; otherwise ``ground_truth`` says why there are none and
  ``network`` gives the sizes), ``latency_ms`` per built-in profile for this network (a table
  scaled by operator cost where it was measured on another network: ``latency.network_profile``),
  ``latency_provenance`` per profile (one line: the table used, or "scaled from ..."), and
  ``fits`` per MCU profile (the int8 TFLite file in flash, TFLM's host-build arena in SRAM).
  """
  return describe_cells([arch], dataset, channels, cells_per_stage)[0]
