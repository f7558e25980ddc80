"""Tests for monas_jax.hardware: the latency model, profiles, calibration, profiling, memory.

Real data: the HW-NAS-Bench measurements in ../shared/data/latency/ (skipped where absent) and
the package's bundled NAS-Bench-201 table and profiles. Fixture CSVs are written by the tests in
the real ``arch_str,latency_ms`` format.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax import benchmark, models, space
from monas_jax.hardware import calibration, latency, profiling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HWNAS_CSV = os.path.join(ROOT, "..", "shared", "data", "latency",
                         "hwnasbench_cifar10_latency_ms.csv")
needs_hwnas = pytest.mark.skipif(not os.path.isfile(HWNAS_CSV),
                                 reason=f"HW-NAS-Bench measurements not found at {HWNAS_CSV}")
CELL_4248 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|")
BUILTINS = ("eyeriss", "fpga", "pixel3", "raspi4", "stm32f746", "stm32l432")


def _write_csv(path, rows, header=("arch_str", "latency_ms")):
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  return str(path)


def _random_ops(n, seed):
  idx = np.random.default_rng(seed).choice(space.NUM_CELLS, n, replace=False)
  return benchmark.load_table().ops[idx]


# ---------------------------------------------------------------------------------------------
# Algorithm 1 and the reference table.


def test_stm32f746_reference_cell_is_42_48_ms():
  p = latency.load_profile("stm32f746")
  assert round(latency.estimate_ms(p, CELL_4248), 2) == 42.48
  # (5 * 80.26 + 23.49) * 0.1 ms, the reference code's arithmetic
  np.testing.assert_allclose(latency.estimate_ms(p, CELL_4248), 42.479, atol=1e-9)
  mask = space.Arch.from_string(CELL_4248).to_mask()
  np.testing.assert_allclose(float(jax.jit(latency.latency_ms)(p.arrays, mask)), 42.479,
                             rtol=1e-6)


def test_estimate_accepts_string_arch_ops_and_mask():
  a = space.Arch.from_string(CELL_4248)
  values = {latency.estimate_ms("stm32f746", x) for x in (CELL_4248, a, a.ops, a.to_mask())}
  assert len(values) == 1


def test_supernet_mask_sums_active_operators():
  p = latency.load_profile("stm32f746")
  mask = space.full_mask(exclude=["none"])
  expected = 6 * (0.143 + 2.349 + 8.026 + 2.402)
  np.testing.assert_allclose(float(latency.latency_ms(p.arrays, mask)), expected, rtol=1e-6)
  # Removing one operator lowers the supernet latency by exactly its entry.
  pruned = mask.copy()
  pruned[2, space.OP_INDEX["nor_conv_3x3"]] = 0
  np.testing.assert_allclose(float(latency.latency_ms(p.arrays, pruned)), expected - 8.026,
                             rtol=1e-6)


def test_latency_ms_is_jittable_vmappable_and_never_retraces():
  p = latency.load_profile("raspi4")
  ops = _random_ops(20, seed=1)
  masks = np.stack([space.ops_to_mask(o) for o in ops])

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(table, mask):
    return latency.latency_ms(table, mask)

  single = np.array([float(f(p.arrays, m)) for m in masks])
  batched = np.asarray(jax.vmap(latency.latency_ms, in_axes=(None, 0))(p.arrays, masks))
  np.testing.assert_allclose(single, latency.estimate_many_ms(p, ops), rtol=1e-5)
  np.testing.assert_allclose(batched, single, rtol=1e-6)


def test_live_mask_and_zero_output_on_known_cells():
  # node 2 feeds nothing (edge 5 is none): edges 1 and 2 are dead.
  ops = space.parse_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|"
                             "+|skip_connect~0|avg_pool_3x3~1|none~2|")
  live = np.asarray(latency.live_mask(space.ops_to_mask(ops)))
  assert live.sum(axis=1).tolist() == [1, 0, 0, 1, 1, 0]
  # all inputs of node 3 none: output identically zero, and nothing is live.
  zero = space.ops_to_mask(space.parse_arch_str(
      "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"))
  assert bool(latency.output_is_zero(zero))
  assert float(np.asarray(latency.live_mask(zero)).sum()) == 0
  # node 1 zero (edge 0 none), node 3 reads only node 1 through a conv: still zero.
  z2 = space.ops_to_mask(space.parse_arch_str(
      "|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"))
  assert bool(latency.output_is_zero(z2))
  assert not bool(latency.output_is_zero(space.ops_to_mask(ops)))
  # A supernet is zero only if every cell inside it is.
  assert not bool(latency.output_is_zero(space.full_mask()))


def test_dead_code_and_zero_output_flags_change_the_sum():
  base = latency.load_profile("stm32f746")
  kw = dict(name="t", device="d", kind="edge", clock_mhz=1.0, runtime="r", batch_size=1,
            provenance="p", date="2024-01-01", table=dict(base.table), overhead_ms=1.0)
  plain = latency.make_profile(**kw)
  pruned = latency.make_profile(**kw, prune_dead=True, fold_zero_output=True, zero_output_ms=0.5)
  dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
  np.testing.assert_allclose(latency.estimate_ms(plain, dead) - latency.estimate_ms(pruned, dead),
                             8.026 + 2.349)
  zero = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"
  assert latency.estimate_ms(pruned, zero) == 0.5
  assert latency.estimate_ms(plain, zero) > 10


@pytest.mark.parametrize("name", ["stm32f746", "raspi4"])
def test_cheapest_latency_matches_enumeration(name):
  p = latency.load_profile(name)
  rng = np.random.default_rng(0)
  for _ in range(3):
    mask = (rng.random((6, 5)) < 0.5).astype(np.float32)
    mask[np.arange(6), rng.integers(0, 5, 6)] = 1  # every edge keeps an operator
    cells = space.single_path_ops(mask)
    brute = min(latency.estimate_ms(p, c) for c in cells)
    got = float(jax.jit(latency.cheapest_latency_ms)(p.arrays, mask))
    np.testing.assert_allclose(got, brute, rtol=1e-5)
    arch, ms = latency.cheapest_cell(p, mask)
    np.testing.assert_allclose(ms, brute, rtol=1e-12)
    assert all(mask[e, o] for e, o in enumerate(arch.ops))


# ---------------------------------------------------------------------------------------------
# Profiles.


def test_builtin_profiles_load_with_full_metadata():
  assert latency.builtin_profiles() == sorted(BUILTINS)
  for name in BUILTINS:
    p = latency.load_profile(name)
    raw = json.loads((latency.profiles_dir() / f"{name}.json").read_text())
    for key in ("name", "device", "clock_mhz", "runtime", "units", "batch_size", "provenance",
                "date", "kind", "overhead_ms", "cells_per_stage", "table"):
      assert key in raw, (name, key)
    assert p.name == name and p.units == "ms" and p.batch_size == 1
    assert p.cell_ms.shape == (3, 6, 5) and np.all(p.cell_ms >= 0)
    assert p.clock_mhz is not None or raw.get("clock_note")
    if p.kind == "mcu":
      assert p.sram_bytes and p.flash_bytes
  f7, l4 = latency.load_profile("stm32f746"), latency.load_profile("stm32l432")
  assert (f7.sram_bytes, f7.flash_bytes) == (320 * 1024, 1024 * 1024)
  assert (l4.sram_bytes, l4.flash_bytes) == (64 * 1024, 128 * 1024)
  assert l4.estimate and not f7.estimate
  assert {latency.load_profile(n).kind for n in ("raspi4", "pixel3", "eyeriss", "fpga")} == {"edge"}


def test_stm32l432_is_the_documented_scaling_of_stm32f746():
  l4 = latency.load_profile("stm32l432")
  d = l4.extra["derivation"]
  again = latency.scale_profile(
      latency.load_profile("stm32f746"), name="x", device="x", clock_mhz=80.0, runtime="x",
      compute_issue_factor=d["compute_issue_factor"],
      memory_issue_factor=d["memory_issue_factor"], date="x", provenance="x", sram_bytes=1,
      flash_bytes=1)
  np.testing.assert_allclose(l4.cell_ms, again.cell_ms, rtol=1e-6)
  assert d["clock_ratio"] == pytest.approx(216 / 80)
  assert 1.5 <= d["compute_issue_factor"] <= 1.7
  f7 = latency.load_profile("stm32f746")
  ratio = latency.estimate_ms(l4, CELL_4248) / latency.estimate_ms(f7, CELL_4248)
  assert 2.7 * 1.5 <= ratio <= 2.7 * 1.7


def test_save_and_load_round_trip(tmp_path):
  p = latency.load_profile("raspi4")
  path = tmp_path / "copy.json"
  latency.save_profile(p, path)
  q = latency.load_profile(str(path))
  np.testing.assert_array_equal(q.cell_ms, p.cell_ms)
  assert (q.prune_dead, q.fold_zero_output, q.zero_output_ms) == (
      p.prune_dead, p.fold_zero_output, p.zero_output_ms)
  assert q.extra["fit"] == p.extra["fit"]


def test_table_forms_expand_consistently():
  ops = list(space.OPS)
  per_op = [0.0, 0.1, 0.2, 0.3, 0.4]
  a = latency.expand_table({"form": "network_op", "ms": per_op}, 5)
  b = latency.expand_table({"form": "network_edge_op", "ms": [per_op] * 6}, 5)
  c = latency.expand_table({"form": "cell_stage_op", "ms": [[v / 15 for v in per_op]] * 3}, 5)
  d = latency.expand_table({"form": "cell_stage_edge_op", "ops": ops[::-1],
                            "ms": [[[v / 15 for v in per_op[::-1]]] * 6] * 3}, 5)
  for x in (b, c, d):
    np.testing.assert_allclose(x, a)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("provenance"), "lacks field"),
    (lambda d: d.update(units="0.1ms"), "units"),
    (lambda d: d.update(kind="phone"), "kind"),
    (lambda d: d["table"].update(ms=[0, 1, 2, -3, 4]), ">= 0"),
    (lambda d: d["table"].update(ms=[0, 1, 2]), "shape"),
    (lambda d: d["table"].update(ops=["none", "skip", "a", "b", "c"]), "unknown operator"),
    (lambda d: d.pop("sram_bytes"), "sram_bytes"),
    (lambda d: d.update(clock_mhz=None), "clock_note"),
    (lambda d: d.update(fold_zero_output=True), "zero_output_ms"),
])
def test_profile_schema_errors_name_the_field(change, message):
  d = json.loads((latency.profiles_dir() / "stm32f746.json").read_text())
  change(d)
  with pytest.raises(ValueError, match=message):
    latency.profile_from_dict(d)


def test_unknown_profile_and_bad_json(tmp_path):
  with pytest.raises(ValueError, match="unknown profile 'stm32h7'.*built-in"):
    latency.load_profile("stm32h7")
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(ValueError, match="not valid JSON"):
    latency.load_profile(str(bad))


# ---------------------------------------------------------------------------------------------
# Memory budgets and describe.


def test_fits_memory_and_describe_fields():
  f7 = latency.load_profile("stm32f746")
  assert latency.fits_memory(f7, 1024 * 1024, 320 * 1024)
  assert not latency.fits_memory(f7, 1024 * 1024 + 1, 1)
  assert not latency.fits_memory(f7, 1, 320 * 1024 + 1)
  with pytest.raises(ValueError, match="no sram_bytes"):
    latency.fits_memory("raspi4", 1, 1)
  from monas_jax.proxies import cost
  cheap = "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
  fields = latency.describe_fields(CELL_4248)
  assert set(fields["latency_ms"]) == set(BUILTINS)
  assert set(fields["fits"]) == {"stm32f746", "stm32l432"}
  assert round(fields["latency_ms"]["stm32f746"], 2) == 42.48
  for arch in (CELL_4248, cheap):
    mem = cost.deployment_memory(arch, "cifar10")
    got = latency.describe_fields(arch)["fits"]
    for name in ("stm32f746", "stm32l432"):
      p = latency.load_profile(name)
      assert got[name] == (mem["tflite_bytes"] <= p.flash_bytes
                           and mem["tflm_arena_bytes"] <= p.sram_bytes)
  assert latency.describe_fields(cheap)["fits"]["stm32f746"]
  assert not latency.describe_fields(CELL_4248)["fits"]["stm32l432"]


# ---------------------------------------------------------------------------------------------
# Calibration.


def test_fit_recovers_a_known_table_from_a_fixture_csv(tmp_path):
  ops = _random_ops(60, seed=3)
  true = latency.load_profile("stm32f746")
  y = latency.estimate_many_ms(true, ops) + 1.5  # plus a constant overhead
  path = _write_csv(tmp_path / "m.csv", [(space.ops_to_arch_str(o), repr(float(v)))
                                         for o, v in zip(ops, y)])
  archs, lat = calibration.read_measurements(path)
  masks = calibration.ops_to_masks([space.parse_arch_str(a) for a in archs])
  res = calibration.calibrate(masks, lat, k=5, seed=0)
  assert res.fit.model.form == "op" and not res.fit.model.prune_dead
  np.testing.assert_allclose(res.fit.network_ms[0], [0, 0.143, 2.349, 8.026, 2.402], atol=1e-6)
  np.testing.assert_allclose(res.fit.overhead_ms, 1.5, atol=1e-6)
  assert res.heldout["kendall_tau"] > 0.999 and res.heldout["mape"] < 1e-6


@needs_hwnas
@pytest.mark.parametrize("device, tau", [("raspi4", 0.78), ("pixel3", 0.77), ("eyeriss", 0.95),
                                         ("fpga", 0.98)])
def test_fit_on_100_hwnasbench_cells_predicts_the_rest(device, tau):
  archs, lat = calibration.read_measurements(HWNAS_CSV, f"{device}_latency_ms")
  assert len(archs) == space.NUM_CELLS
  masks = calibration.ops_to_masks([space.parse_arch_str(a) for a in archs])
  idx = np.random.default_rng(0).permutation(len(lat))
  cal, rest = idx[:100], idx[100:]
  res = calibration.calibrate(masks[cal], lat[cal], k=5, seed=0)
  m = calibration.rank_metrics(res.fit.predict(masks[rest]), lat[rest])
  assert m["n_cells"] == 15525
  assert m["kendall_tau"] >= tau, m


@needs_hwnas
def test_builtin_fitted_profiles_agree_with_the_measurements():
  for device, tau in (("raspi4", 0.85), ("pixel3", 0.85), ("eyeriss", 0.999), ("fpga", 0.999)):
    archs, lat = calibration.read_measurements(HWNAS_CSV, f"{device}_latency_ms")
    pred = latency.estimate_many_ms(device, [space.parse_arch_str(a) for a in archs])
    assert calibration.rank_metrics(pred, lat)["kendall_tau"] >= tau


def test_rank_metrics_rounding_only_merges_float_noise():
  y = np.array([1.0, 1.0 + 1e-13, 2.0, 3.0])
  p = np.array([1.0 + 1e-13, 1.0, 2.0, 3.0])
  assert calibration.rank_metrics(p, y)["kendall_tau"] == pytest.approx(1.0)
  assert calibration.rank_metrics(p, y, resolution_ms=None)["kendall_tau"] < 1.0
  m = calibration.rank_metrics(np.array([1.1, 2.0, 2.7]), np.array([1.0, 2.0, 3.0]))
  assert m["mape"] == pytest.approx(10.0) and m["n_cells"] == 3


@pytest.mark.parametrize("rows, header, message", [
    ([("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "1.0")], ("arch", "latency_ms"),
     "missing column.*arch_str"),
    ([("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "1.0")], ("arch_str", "ms"),
     "missing column.*latency_ms"),
    ([("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "1.0")], None,
     r"m.csv:2: bad arch_str: unknown operator 'conv_5x5'"),
    ([("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "-0.5")], None, "m.csv:2: .*>= 0"),
    ([("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "fast")], None, "not a number"),
    ([("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "1"),
      ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "2")], None, "already measured"),
    ([], None, "no measurements"),
])
def test_bad_measurement_files_give_clear_errors(tmp_path, rows, header, message):
  path = _write_csv(tmp_path / "m.csv", rows, header or ("arch_str", "latency_ms"))
  with pytest.raises(ValueError, match=message):
    calibration.read_measurements(path)


def test_too_few_cells_to_calibrate():
  masks = calibration.ops_to_masks(_random_ops(6, seed=0))
  with pytest.raises(ValueError, match="at least 10"):
    calibration.calibrate(masks, np.ones(6), k=5)


# ---------------------------------------------------------------------------------------------
# Command line (the shell): last line is one JSON object; bad input exits with a message.


def _cli(*args):
  proc = subprocess.run([sys.executable, "-m", "experiments.latency", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  return proc


def test_cli_fit_then_validate(tmp_path):
  ops = _random_ops(40, seed=5)
  y = latency.estimate_many_ms("raspi4", ops)
  meas = _write_csv(tmp_path / "m.csv", [(space.ops_to_arch_str(o), repr(float(v)))
                                         for o, v in zip(ops, y)])
  out = tmp_path / "fitted.json"
  proc = _cli("fit", f"--measurements={meas}", f"--out={out}", "--calibration_cells=30",
              "--device=test rig")
  assert proc.returncode == 0, proc.stderr
  res = json.loads(proc.stdout.strip().splitlines()[-1])
  for key in ("kendall_tau", "spearman_rho", "mape", "n_cells"):
    assert key in res
  assert res["n_cells"] == 30 and res["holdout"]["n_cells"] == 10
  assert res["kendall_tau"] > 0.9
  p = latency.load_profile(str(out))
  assert p.device == "test rig" and p.extra["fit"]["calibration_cells"] == 30
  proc = _cli("validate", f"--profile={out}", f"--measurements={meas}")
  assert proc.returncode == 0, proc.stderr
  res = json.loads(proc.stdout.strip().splitlines()[-1])
  assert res["n_cells"] == 40 and res["kendall_tau"] > 0.9
  proc = _cli("validate", "--profile=no_such_device", f"--measurements={meas}")
  assert proc.returncode == 2 and "unknown profile 'no_such_device'" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Profiling (tiny networks; the full-size check is the slow test at the end).


def test_stagewise_network_with_one_cell_is_models_network():
  ops = space.parse_arch_str(CELL_4248)
  variables = profiling.supernet_variables(0, channels=4, cells_per_stage=1, input_size=8)
  v = profiling.restrict_variables(variables, (ops,) * 3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8, 8, 3)), jnp.float32)
  net = models.Network(4, 1, 10, ops_per_edge=ops)
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), x, train=False))
  want = jax.tree_util.tree_map(lambda s: s.shape,
                                {k: shapes[k] for k in ("params", "batch_stats")})
  assert jax.tree_util.tree_map(lambda a: a.shape, v) == want
  a = net.apply(v, x, train=False)
  b = profiling.StagewiseNetwork(4, 1, 10, (ops,) * 3).apply(v, x, train=False)
  np.testing.assert_allclose(a, b, rtol=1e-6)


def test_time_calls_with_a_fake_clock():
  ticks = itertools.count()
  ms = profiling.time_calls([lambda: jnp.zeros(()), lambda: jnp.ones(())], warmup=1, rounds=4,
                            min_repeat_s=0.0, clock=lambda: next(ticks) * 1e-3)
  assert ms.shape == (2, 4)
  np.testing.assert_allclose(ms, 1.0)  # one call per repeat, 1 ms per tick


def test_profile_and_measure_smoke_on_a_tiny_network():
  kw = dict(channels=2, cells_per_stage=1, input_size=8, warmup=1, rounds=2, min_repeat_s=0.0)
  res = profiling.profile_operators(**kw)
  assert res["cell_stage_op_ms"].shape == (3, 5) and np.all(res["cell_stage_op_ms"] >= 0)
  assert res["cell_stage_op_ms"][:, 0].tolist() == [0, 0, 0]
  p = profiling.host_profile(res, name="h", device="cpu", clock_mhz=None, runtime="xla",
                             date="2024-01-01", provenance="test", cells_per_stage=1)
  assert p.kind == "host" and p.prune_dead and p.fold_zero_output
  m = profiling.measure_networks([space.parse_arch_str(CELL_4248), profiling.IDENTITY], **kw)
  assert m["latency_ms"].shape == (2,) and np.all(m["latency_ms"] > 0)


@pytest.mark.slow
def test_host_profile_predicts_measured_networks(tmp_path):
  """The issue's check: a host table predicts 100 measured networks with tau >= 0.8 (minutes)."""
  prof = tmp_path / "host.json"
  proc = _cli("profile", f"--out={prof}")
  assert proc.returncode == 0, proc.stderr
  proc = subprocess.run([sys.executable, "-m", "experiments.latency", "measure", "--cells=100",
                         f"--profile={prof}", f"--out={tmp_path / 'measured.csv'}"], cwd=ROOT,
                        capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr
  res = json.loads(proc.stdout.strip().splitlines()[-1])
  assert res["n_cells"] == 100 and res["kendall_tau"] >= 0.8, res
