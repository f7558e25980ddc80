"""Everything known about one cell without training it: benchmark, cost, memory, latency."""
from __future__ import annotations

from typing import Any

from monas_jax import benchmark, space
from monas_jax.proxies import cost


def describe_cell(arch, dataset: str = "cifar10") -> dict[str, Any]:
  """One JSON-able record of a cell (Arch, arch string, operator tuple or one-hot mask).

  Keys: ``arch_str``, ``nb201_index``, ``ops``, ``dataset``, ``flops_M`` and ``params_M`` (the
  C=16, N=5 network on ``dataset``), the memory fields of ``cost.deployment_memory`` (bytes),
  the benchmark's 200-epoch test accuracies (%), ``latency_ms`` per built-in profile and
  ``fits`` per MCU profile.
  """
  from monas_jax.hardware import latency  # late: hardware imports the cost model
  a = space.to_arch(arch)
  gt = benchmark.lookup(a)
  out: dict[str, Any] = {
      "arch_str": gt["arch_str"], "nb201_index": gt["nb201_index"], "ops": list(a.names),
      "dataset": dataset, "flops_M": round(cost.flops_M(a, dataset), 6),
      "params_M": round(cost.params_M(a, dataset), 6)}
  out.update(cost.deployment_memory(a, dataset))
  for name in ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"):
    out[name] = gt[name]
  out.update(latency.describe_fields(a, dataset))
  return out
