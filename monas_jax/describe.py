"""Everything known about one cell without training it: benchmark, cost, memory, latency."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from monas_jax import benchmark, space
from monas_jax.proxies import cost


def describe_cells(archs: Sequence, dataset: str = "cifar10") -> list[dict[str, Any]]:
  """``describe_cell`` for many cells, with each latency table applied to all cells at once."""
  from monas_jax.hardware import latency  # late: hardware imports the cost model
  cells = [space.to_arch(a) for a in archs]
  ops = np.array([a.ops for a in cells], np.int64).reshape(-1, space.NUM_EDGES)
  profiles = [latency.load_profile(n) for n in latency.builtin_profiles()]
  lat = {p.name: latency.estimate_many_ms(p, ops) for p in profiles}
  out = []
  for i, a in enumerate(cells):
    rec = _base_record(a, dataset)
    rec["latency_ms"] = {n: float(v[i]) for n, v in lat.items()}
    rec["fits"] = {p.name: latency.fits_memory(p, rec["flash_bytes_int8"],
                                               rec["peak_sram_bytes_int8"])
                   for p in profiles if p.kind == "mcu"}
    out.append(rec)
  return out


def _base_record(a: space.Arch, dataset: str) -> dict[str, Any]:
  gt = benchmark.lookup(a)
  out: dict[str, Any] = {
      "arch_str": gt["arch_str"], "nb201_index": gt["nb201_index"], "ops": list(a.names),
      "dataset": dataset, "flops_M": round(cost.flops_M(a, dataset), 6),
      "params_M": round(cost.params_M(a, dataset), 6)}
  out.update(cost.deployment_memory(a, dataset))
  for name in ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"):
    out[name] = gt[name]
  return out


def describe_cell(arch, dataset: str = "cifar10") -> dict[str, Any]:
  """One JSON-able record of a cell (Arch, arch string, operator tuple or one-hot mask).

  Keys: ``arch_str``, ``nb201_index``, ``ops``, ``dataset``, ``flops_M`` and ``params_M`` (the
  C=16, N=5 network on ``dataset``), the memory fields of ``cost.deployment_memory`` (bytes),
  the benchmark's 200-epoch test accuracies (%), ``latency_ms`` per built-in profile and
  ``fits`` per MCU profile.
  """
  return describe_cells([arch], dataset)[0]
