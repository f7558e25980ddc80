"""The hardware model at the user's network size (issue 22, items 3 and 4): latency tables scaled
by operator cost where they were measured on another network (and unchanged where they were),
a table fitted at the user's size, and the memory walk and advice behind the memory budget.

Everything here is table arithmetic and liveness walks: no network is compiled.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from monas_jax import benchmark, data, space
from monas_jax.hardware import latency, memory
from monas_jax.proxies import cost
from monas_jax.search import budget as budget_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTINS = ("eyeriss", "fpga", "pixel3", "raspi4", "stm32f746", "stm32l432")
CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|" \
    "nor_conv_3x3~2|"
SKIPS = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|" \
    "skip_connect~2|"
GRAY48 = data.DataSpec("folder", 48, 1, 3, (0.5,), (0.25,), 6)


def _spec(size, channels=3, classes=10):
  return data.DataSpec("folder", size, channels, classes, (0.5,) * channels,
                       (0.25,) * channels, data.default_pad(size))


def _ops(n, seed):
  idx = np.random.default_rng(seed).choice(space.NUM_CELLS, n, replace=False)
  return benchmark.load_table().ops[idx]


# ---------------------------------------------------------------------------------------------
# Latency: the measured network keeps its table.

@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet16_120"])
def test_tables_are_unchanged_at_nas_bench_201s_network(dataset):
  ops = _ops(64, seed=1)
  for name in BUILTINS:
    p = latency.network_profile(name, dataset, 16, 5)
    assert p is latency.load_profile(name) and not p.extra.get("scaled")
    np.testing.assert_array_equal(latency.estimate_many_ms(p, ops),
                                  latency.estimate_many_ms(name, ops))
  # (describe_cell's values at cifar10: tests/test_folder_data.py.)
  assert latency.latency_provenance(latency.network_profile("stm32l432", dataset)) == (
      "stm32l432 table for 32x32x3, C=16, N=5")


# ---------------------------------------------------------------------------------------------
# Latency: the scaling rule.

def test_scaled_network_op_table_by_hand():
  # stm32l432 stores one time per operator for all 15 cells (C=16, N=5, 32x32x3): a cell of six
  # 3x3 convolutions is 6 x 34.67232 ms. At 64x64, C=8 every stage's convolutions keep their
  # work (C_s^2 H_s W_s: 1/4 x 4) and N=3 runs 9 cells instead of 15.
  ms = dict(zip(latency.load_profile("stm32l432").table["ops"],
                latency.load_profile("stm32l432").table["ms"]))
  assert latency.estimate_ms("stm32l432", CONV3) == pytest.approx(6 * ms["nor_conv_3x3"])
  p = latency.network_profile("stm32l432", _spec(64), 8, 3)
  assert p.estimate and p.cells_per_stage == 3
  assert latency.estimate_ms(p, CONV3) == pytest.approx(6 * ms["nor_conv_3x3"] * 9 / 15)
  # Skip connections move C_s H_s W_s elements: 1/2 x 4 = 2x per cell.
  assert latency.estimate_ms(p, SKIPS) == pytest.approx(6 * ms["skip_connect"] * 2 * 9 / 15)
  assert latency.latency_provenance(p).startswith(
      "scaled from stm32l432 measured at 32x32x3, C=16, N=5 to 64x64x3, C=8, N=3")


def test_each_size_scales_each_operator_by_its_cost():
  base = latency.load_profile("raspi4")  # per-edge table, dead-code pruning, overhead
  double_side = latency.network_profile(base, _spec(64), 16, 5)
  double_c = latency.network_profile(base, _spec(32), 32, 5)
  conv = [space.OP_INDEX[o] for o in latency.COMPUTE_BOUND_OPS]
  moves = [space.OP_INDEX[o] for o in latency.MEMORY_BOUND_OPS]
  np.testing.assert_allclose(double_side.cell_ms, base.cell_ms * 4)  # H x W: 4x for all
  np.testing.assert_allclose(double_c.cell_ms[..., conv], base.cell_ms[..., conv] * 4)
  np.testing.assert_allclose(double_c.cell_ms[..., moves], base.cell_ms[..., moves] * 2)
  # The overhead follows the stem's and reduction blocks' MACs: 4x for H x W; 4x for C but
  # for the stem (linear in C): 2 x 442,368 + 4 x 7,340,032 over 7,782,400.
  assert double_side.overhead_ms == pytest.approx(base.overhead_ms * 4)
  assert double_c.overhead_ms == pytest.approx(
      base.overhead_ms * (2 * 442368 + 4 * 7340032) / 7782400)
  assert double_side.zero_output_ms == base.zero_output_ms
  # Grayscale input changes only the stem.
  gray = latency.network_profile(base, _spec(32, 1), 16, 5)
  np.testing.assert_array_equal(gray.cell_ms, base.cell_ms)
  assert gray.overhead_ms == pytest.approx(base.overhead_ms * (442368 / 3 + 7340032) / 7782400)
  ops = _ops(200, seed=2)
  np.testing.assert_allclose(latency.estimate_many_ms(double_side, ops),
                             4 * latency.estimate_many_ms(base, ops) - 3 * np.where(
                                 latency.estimate_many_ms(base, ops) == base.zero_output_ms,
                                 base.zero_output_ms, 0.0), rtol=1e-12)


@pytest.mark.parametrize("size, channels, c", [(32, 3, 16), (48, 1, 8), (64, 3, 8), (96, 1, 4)])
def test_outer_macs_are_the_models_stem_and_reduction_layers(size, channels, c):
  spec = _spec(size, channels)
  classifier = 4 * c * spec.num_classes + spec.num_classes  # the dense layer, left out
  got = latency.outer_macs(latency.MeasuredNetwork(size, channels, c, 3))
  assert got == round(cost.cost_table(spec, c, 3).base_flops_M * 1e6) - classifier


def test_search_indicator_and_budget_use_the_scaled_table(tmp_path):
  from monas_jax import config as config_lib
  from monas_jax.proxies import indicators
  c = config_lib.make_config("folder", "smoke")
  c.data_dir, c.image_size, c.image_channels = str(tmp_path), 48, 1
  c.network.channels, c.network.cells_per_stage = 8, 3
  c.search.latency_weight, c.search.latency_budget_ms = 0.5, 20.0
  c.hardware.profile = "stm32l432"
  config_lib.validate(c)  # mu and a latency budget are allowed at any size now
  c.num_classes, c.norm_mean, c.norm_std = 3, (0.5,), (0.25,)  # as resolve_config fills them in
  want = latency.network_profile("stm32l432", data.config_spec(c), 8, 3)
  assert latency.config_profile(c) is want  # one scaled profile per network, cached
  ind = indicators.latency_indicator(c)
  mask = space.to_arch(CONV3).to_mask()
  assert float(ind.fn(mask, None, None)) == pytest.approx(latency.estimate_ms(want, CONV3),
                                                          rel=1e-6)
  assert budget_lib.from_config(c).profile is want


def test_a_table_fitted_at_the_users_size_is_used_there_unscaled(tmp_path):
  # Measurements "taken" at 48x48x1, C=8, N=3: the scaled stm32l432 estimate stands in for them.
  at48 = latency.network_profile("stm32l432", GRAY48, 8, 3)
  ops = _ops(40, seed=3)
  meas = tmp_path / "m.csv"
  times = latency.estimate_many_ms(at48, ops)
  meas.write_text("arch_str,latency_ms\n" + "".join(
      f"{space.ops_to_arch_str(o)},{float(v)!r}\n" for o, v in zip(ops, times)))
  out = tmp_path / "mine.json"
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.latency", "fit", f"--measurements={meas}",
       f"--out={out}", "--image_size=48", "--image_channels=1", "--channels=8",
       "--cells_per_stage=3", "--folds=2", "--device=my board"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert json.loads(proc.stdout.strip().splitlines()[-1])["network"] == {
      "image_size": 48, "image_channels": 1, "channels": 8, "cells_per_stage": 3}
  mine = latency.load_profile(str(out))
  assert latency.measured_network(mine) == (48, 1, 8, 3)
  here = latency.network_profile(mine, GRAY48, 8, 3)
  assert here is mine and latency.latency_provenance(mine) == (
      "mine table for 48x48x1, C=8, N=3")
  np.testing.assert_allclose(latency.estimate_many_ms(here, ops),
                             latency.estimate_many_ms(at48, ops), rtol=1e-4)
  # At NAS-Bench-201's size the fitted table is scaled back: the stm32l432 table again.
  back = latency.network_profile(mine, "cifar10", 16, 5)
  assert latency.latency_provenance(back).startswith(
      "scaled from mine measured at 48x48x1, C=8, N=3 to 32x32x3, C=16, N=5")
  np.testing.assert_allclose(latency.estimate_many_ms(back, ops),
                             latency.estimate_many_ms("stm32l432", ops), rtol=1e-4)
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.latency", "fit", f"--measurements={meas}",
       f"--out={tmp_path / 'x.json'}", "--image_size=50"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "--image_size = 50 is not allowed: a multiple of 4" in (
      proc.stderr)


def test_profile_network_field_is_checked():
  d = latency.profile_to_dict(latency.load_profile("fpga"))
  d["network"] = {"image_size": 48, "colour": 1}
  with pytest.raises(ValueError, match="profile field 'network' is .* allowed: an object"):
    latency.profile_from_dict(d)
  with pytest.raises(ValueError, match="network image_size = 50 is not allowed: a multiple of 4"):
    latency.network_profile("fpga", _spec(50), 16, 5)


# ---------------------------------------------------------------------------------------------
# Memory: the one-cell-per-stage walk and the advice when nothing fits.

@pytest.mark.parametrize("spec", [GRAY48, "cifar10"], ids=["gray48", "cifar10"])
def test_peak_walk_of_one_cell_per_stage_equals_the_full_walk(spec):
  for o in _ops(60, seed=4):
    for n in (1, 2, 5):
      m = memory.deployment_memory(o, spec, 8, n)
      assert m["peak_sram_bytes_int8"] == memory.peak_sram_bytes(o, spec, 8, n)
      assert m["peak_sram_bytes_float32"] == memory.peak_sram_bytes(o, spec, 8, n, "float32")
  ops = _ops(300, seed=5)
  flash, sram = memory.memory_table(ops, spec, 8, 2)
  want = [memory.deployment_memory(o, spec, 8, 2) for o in ops]
  assert flash.tolist() == [w["flash_bytes_int8"] for w in want]
  assert sram.tolist() == [w["peak_sram_bytes_int8"] for w in want]


def _budget(spec, c, n, model="tflm"):
  p = latency.load_profile("stm32l432")
  return budget_lib.Budget(profile=p, sram_bytes=p.sram_bytes, flash_bytes=p.flash_bytes,
                           dataset=spec, channels=c, cells_per_stage=n, memory_model=model)


# The largest C and side that fit, by the ONNX graph's activations and by TFLM's arena (the
# arena adds the runtime's persistent data and the converter's padded maps; N=2 keeps its
# whole-space tables quick).
@pytest.mark.parametrize("model,n,c_fit,side_fit", [("onnx", 5, 9, 36), ("tflm", 2, 8, 32)])
def test_memory_error_says_which_c_or_size_fits_and_they_do(model, n, c_fit, side_fit):
  start = space.full_mask(("none",))  # the search's default start
  with pytest.raises(budget_lib.BudgetError) as err:
    _budget(GRAY48, 16, n, model).check_reachable(start)
  msg = str(err.value)
  assert "\n" not in msg
  assert "the stem's output alone is 48x48x16 = 36864 B in int8" in msg
  assert (f"would fit: config.network.channels <= {c_fit} (at N={n}, 48x48), or "
          f"config.image_size <= {side_fit} (at C=16, N={n})") in msg
  assert "cells_per_stage <=" not in msg  # not even N = 1 fits at C = 16
  _budget(GRAY48, c_fit, n, model).check_reachable(start)  # C fits ...
  _budget(_spec(side_fit, 1, 3), 16, n, model).check_reachable(start)  # ... and so does the side
  with pytest.raises(budget_lib.BudgetError):
    _budget(GRAY48, c_fit + 1, n, model).check_reachable(start)  # and nothing larger
  with pytest.raises(budget_lib.BudgetError):
    _budget(_spec(side_fit + 4, 1, 3), 16, n, model).check_reachable(start)
