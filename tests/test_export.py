"""Export: the folded NCHW network equals models.Network; ONNX (onnxruntime) matches JAX; int8.

Random cells with random parameters and random BatchNorm statistics (so that folding is
exercised), on normalised bundled CIFAR-10 images. The fast suite checks 20 random cells of a
small network (C=4, N=1) and one full C=16, N=5 cell; the slow suite 20 full-size cells.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("jax2onnx")
pytest.importorskip("onnxruntime")

from monas_jax import data, export, models, space  # noqa: E402
from monas_jax.hardware import memory  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C100_OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def images():
  x, y, _ = data.load_images("cifar10", None)
  return np.asarray(data.normalize(x[:64], "cifar10")), y[:64]


def random_variables(ops, channels, cells, key, images=None):
  """Random parameters (BatchNorm scales and shifts too) and BatchNorm statistics of real images.

  The statistics are the train-mode batch statistics of ``images`` (float32 (n, 32, 32, 3), by
  default 8 bundled images; few, because XLA constant-folds the pooling window counts): with
  arbitrary ones, activations grow by the edge sums of 3(N + 1) cells to 1e4 and beyond, where a
  float32 ulp alone exceeds the 1e-4 tolerance; a trained network's statistics are of its data.
  """
  net = models.Network(channels, cells, 10, ops_per_edge=tuple(ops))
  v = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
  k1, k3 = jax.random.split(key)
  params = models.initialize(k1, v["params"], "torch_default")
  # BatchNorm: random affine parameters, so folding is not the identity.
  flat, tree = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(k3, len(flat))
  params = jax.tree_util.tree_unflatten(tree, [
      jax.random.uniform(k, leaf.shape, minval=0.5, maxval=1.5) if p[-1].key == "scale" else
      (0.2 * jax.random.normal(k, leaf.shape) if p[-1].key == "bias" else leaf)
      for k, (p, leaf) in zip(keys, flat)])
  if images is None:
    x, _, _ = data.load_images("cifar10", None)
    images = np.asarray(data.normalize(x[100:108], "cifar10"))  # not the checked images
  stats0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape) + (0.0), v["batch_stats"])

  @jax.jit
  def settle(params, stats):
    # Running averages (momentum 0.9) of one batch's statistics: 0.9**100 of the start remains.
    def body(_, st):
      _, new = net.apply({"params": params, "batch_stats": st}, images, train=True,
                         mutable=["batch_stats"])
      return new["batch_stats"]
    return jax.lax.fori_loop(0, 100, body, stats)

  stats = settle(params, stats0)
  return jax.device_get(params), jax.device_get(stats)


def random_cells(n, seed):
  rng = np.random.default_rng(seed)
  cells = [tuple(int(o) for o in rng.integers(0, space.NUM_OPS, space.NUM_EDGES)) for _ in range(n)]
  # Every operator on some edge, and a cell whose output is zero (all edges into node 3 'none').
  cells[0] = (4, 3, 2, 1, 0, 4)
  cells[1] = (3, 2, 4, 0, 0, 0)
  return cells


def check_cell(ops, channels, cells_per_stage, images, tmp_path, key):
  params, stats = random_variables(ops, channels, cells_per_stage, key)
  x = images[0][:8]
  ref = export.jax_logits(params, stats, ops, channels, cells_per_stage, 10, x)
  folded = export.fold_batchnorm(params, stats, ops, cells_per_stage)
  path = export.export_onnx(folded, ops, cells_per_stage, 32, str(tmp_path / f"{ops}.onnx"))
  got = export.run_onnx(export.session(path), x.transpose(0, 3, 1, 2).copy())
  return float(np.max(np.abs(got - ref)))


def test_avg_pool_nchw_equals_flax():
  x = jax.random.normal(jax.random.key(0), (2, 5, 7, 3))
  want = models.avg_pool_3x3(x)
  got = export.avg_pool_3x3_nchw(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
  np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_folded_nchw_network_equals_linen_network(images):
  """What is exported (folded, NCHW, pooling by window sums) computes the Linen network."""
  x = images[0][:8]
  for i, ops in enumerate(random_cells(2, 2)):
    params, stats = random_variables(ops, 4, 2, jax.random.key(i))
    ref = export.jax_logits(params, stats, ops, 4, 2, 10, x)
    folded = export.fold_batchnorm(params, stats, ops, 2)
    y = jax.jit(lambda z, f: export.deploy_forward(f, z, ops, 2))(x.transpose(0, 3, 1, 2), folded)
    np.testing.assert_allclose(y, ref, atol=2e-5, rtol=0, err_msg=str(ops))


def test_onnx_matches_jax_for_every_operator_on_every_edge(images, tmp_path):
  # Five cells, cell k with operator (k + e) mod 5 on edge e: each operator on each edge once.
  cells = [tuple((k + e) % space.NUM_OPS for e in range(space.NUM_EDGES))
           for k in range(space.NUM_OPS)]
  diffs = [check_cell(ops, 4, 1, images, tmp_path, jax.random.key(i))
           for i, ops in enumerate(cells)]
  assert max(diffs) <= export.MAX_ABS_DIFF, diffs


@pytest.mark.slow
def test_onnx_matches_jax_for_20_random_small_cells(images, tmp_path):
  diffs = [check_cell(ops, 4, 1, images, tmp_path, jax.random.key(i))
           for i, ops in enumerate(random_cells(20, 0))]
  assert max(diffs) <= export.MAX_ABS_DIFF, diffs


@pytest.mark.slow
def test_onnx_matches_jax_for_20_random_full_size_cells(images, tmp_path):
  diffs = [check_cell(ops, 16, 5, images, tmp_path, jax.random.key(i))
           for i, ops in enumerate(random_cells(20, 1))]
  print("max abs diff per cell:", diffs)
  assert max(diffs) <= export.MAX_ABS_DIFF, diffs


@pytest.mark.slow
def test_full_size_cell_exports_quantises_and_measures(images, tmp_path):
  ops = space.Arch.from_string(C100_OPT).ops
  params, stats = random_variables(ops, 16, 5, jax.random.key(7))
  x, y = images
  rec = export.export_cell(ops=ops, params=params, batch_stats=stats, channels=16,
                           cells_per_stage=5, num_classes=10, check_images=x[:4],
                           calibration_images=x[:16], out_dir=str(tmp_path),
                           eval_images=x[16:48], eval_labels=y[16:48])
  assert rec["matches"] and rec["max_abs_diff"] <= 1e-4
  wb = rec["weight_bytes_by_dtype"]
  n_weights = 1282352  # conv and dense weights of this cell's C=16, N=5 network (no BN)
  # int8: the weights, plus one zero point per output channel (3,114) and per activation tensor.
  assert n_weights < wb["int8"] < n_weights + 4000
  assert rec["int8_bytes"] < rec["float32_bytes"] / 3.5
  # The stage-0 peak: a handful of 32x32x16 int8 feature maps (16 KiB each).
  assert rec["peak_sram_bytes_int8"] % 1024 == 0 and 3 * 16384 <= rec["peak_sram_bytes_int8"] <= 8 * 16384
  assert rec["peak_sram_bytes_float32"] == 4 * rec["peak_sram_bytes_int8"]
  # The memory model agrees with the graph (benchmarks/memory_check.py does more cells): the
  # same activation peak, and flash within the QDQ format's zero points and scales.
  est = memory.deployment_memory(C100_OPT)
  assert est["peak_sram_bytes_int8"] == rec["peak_sram_bytes_int8"]
  assert 0.97 < est["flash_bytes_int8"] / rec["int8_bytes"] <= 1.0
  # int8 logits stay close to float32 ones: the same class for most images.
  f = export.run_onnx(export.session(rec["onnx_path"]), x[16:48].transpose(0, 3, 1, 2).copy())
  q = export.run_onnx(export.session(rec["int8_path"]), x[16:48].transpose(0, 3, 1, 2).copy())
  assert np.mean(f.argmax(1) == q.argmax(1)) >= 0.8


def _export(*args):
  return subprocess.run([sys.executable, "-m", "experiments.export", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    ([f"--arch={C100_OPT}"], "--out"),
    (["--arch=|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--out=X"], "conv_9x9"),
    (["--checkpoint=/nonexistent/run", "--out=X"], "/nonexistent/run"),
    ([f"--arch={C100_OPT}", "--out=X", "--profile=raspi4"], "without sram_bytes"),
    ([f"--arch={C100_OPT}", "--out=X", "--profile=nope"], "--profile=nope"),
    ([f"--arch={C100_OPT}", "--out=X", "--dataset=imagenet16_120"], "--data_dir"),
])
def test_export_command_rejects_bad_input(args, message):
  p = _export(*args)
  assert p.returncode == 2 and message in p.stderr and p.stdout == "", p.stderr
  assert len(p.stderr.strip().splitlines()[-1]) > 0


def test_export_command_prints_verdicts_and_json_last(tmp_path):
  p = _export(f"--arch={C100_OPT}", f"--out={tmp_path}", "--calibration=8")
  assert p.returncode == 0, p.stderr
  lines = p.stdout.strip().splitlines()
  rec = json.loads(lines[-1])
  for k in ("onnx_path", "max_abs_diff", "int8_bytes", "fits_flash", "fits_sram"):
    assert k in rec
  assert set(rec["fits_flash"]) == {"stm32f746", "stm32l432"}
  assert rec["fits_flash"]["stm32l432"] is False  # 1.3 MB of int8 weights, 128 KB of flash
  assert any(line.startswith("stm32f746") and "DOES NOT FIT" in line for line in lines)
  with open(tmp_path / "export.json") as f:
    assert json.load(f) == rec


def test_memory_model_drops_dead_operators():
  """Operators that cannot reach the cell output are not in the exported graph: no flash, no SRAM
  (benchmarks/memory_check.py: the estimate equals the exported graphs' peaks on 12 cells)."""
  dead = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
  assert memory.live_ops(dead) == (4, 0, 0, 1, 1, 0)  # node 2 feeds only a 'none' edge
  same = "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"
  assert memory.deployment_memory(dead) == memory.deployment_memory(same)
  assert memory.deployment_memory(dead)["peak_sram_bytes_int8"] == 49152  # the ONNX graph's


@pytest.mark.parametrize("size", [32, 64])
def test_memory_model_counts_the_pooling_window_count_maps(size):
  """A live 3x3 average pooling adds its reciprocal window-count map to the exported graph (one
  constant per map size: export.avg_pool_3x3_nchw, deduplicated); the flash estimate counts it
  (benchmarks/memory_check.py compares with the exported int8 models at 32x32 and 64x64)."""
  spec = data.DataSpec("folder", size, 1, 10, (0.5,), (0.25,), data.default_pad(size))
  pool = "|avg_pool_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|none~2|"
  skip = "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|none~2|"
  pixels = sum((size >> s) ** 2 for s in range(3))  # one map per stage: s, s/2, s/4 square
  for dtype, nbytes in (("int8", 1), ("float32", 4)):
    a, b = (memory.deployment_memory(c, spec, 8, 3)[f"flash_bytes_{dtype}"] for c in (pool, skip))
    assert a - b == pixels * nbytes
