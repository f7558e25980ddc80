"""Cost model against the benchmark's FLOPs and params for all 15,625 cells and 3 datasets."""
import numpy as np
import pytest

from monas_jax import benchmark, space
from monas_jax.proxies import cost


@pytest.fixture(scope="module")
def all_masks():
  return np.stack([space.ops_to_mask(o) for o in benchmark.load_table().ops])


@pytest.mark.parametrize("dataset, flops_col, params_col", [
    ("cifar10", "flops_c10_M", "params_c10_M"),
    ("cifar100", None, "params_c100_M"),
    ("imagenet16_120", "flops_in16_M", "params_in16_M"),
])
def test_cost_matches_benchmark_for_every_cell(all_masks, dataset, flops_col, params_col):
  t = cost.cost_table(dataset)
  cols = benchmark.load_table().columns
  flops = t.base_flops_M + (all_masks * t.op_flops_M).sum(axis=(1, 2))
  params = t.base_params_M + (all_masks * t.op_params_M).sum(axis=(1, 2))
  assert np.abs(params - cols[params_col]).max() <= 1e-5
  if flops_col:
    assert np.abs(flops - cols[flops_col]).max() <= 1e-3
  else:  # CIFAR-100 differs from CIFAR-10 only in the classifier: 64 x 90 weights + 90 biases
    c10 = cost.cost_table("cifar10")
    np.testing.assert_allclose(flops - (c10.base_flops_M + (all_masks * c10.op_flops_M).sum((1, 2))),
                               64 * 90 / 1e6 + 90 / 1e6, atol=1e-9)


def test_scalar_helpers_and_supernet():
  a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
  assert cost.flops_M(a) == pytest.approx(184.73025, abs=1e-3)
  assert cost.params_M(a, "cifar100") == pytest.approx(1.294356, abs=1e-5)
  t = cost.cost_table("cifar10")
  full = space.full_mask()
  assert float(t.flops_M(full)) > max(cost.flops_M(o) for o in [(3,) * 6, (2,) * 6])
  with pytest.raises(ValueError, match="unknown dataset"):
    cost.flops_M(a, "mnist")


def test_memory_estimates():
  none = cost.deployment_memory((0,) * 6)
  conv = cost.deployment_memory((3,) * 6)
  # int8 weights take a quarter of the float32 weight bytes; per-channel words stay 4 bytes.
  assert conv["flash_bytes_int8"] < conv["flash_bytes_float32"] / 3
  assert conv["peak_sram_bytes_float32"] == 4 * conv["peak_sram_bytes_int8"]
  # Every conv weight of the network in int8: 1 byte per conv/dense weight.
  n_weights = cost.params_M((3,) * 6) * 1e6
  assert conv["flash_bytes_int8"] > n_weights * 0.9
  assert none["peak_sram_bytes_int8"] < conv["peak_sram_bytes_int8"]
  # Stage 0 feature map is 32 x 32 x 16 int8 = 16 KiB; a conv edge needs ReLU + conv temps.
  assert conv["peak_sram_bytes_int8"] % 16384 == 0
  smaller = cost.deployment_memory((3,) * 6, "imagenet16_120")
  assert smaller["peak_sram_bytes_int8"] == conv["peak_sram_bytes_int8"] // 4
