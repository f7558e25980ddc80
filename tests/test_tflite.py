"""int8 TFLite export run in TensorFlow Lite Micro: conversion, parity, arena, the C array.

Real files throughout: the folded network converted by TensorFlow's TFLite converter, written
to disk, and run by TFLM's Python interpreter (``tflite-micro``). Everything but the missing-extra
test skips without ``pip install -e '.[tflite]'``.
"""
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from monas_jax import data, export, space, tflite, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C100_OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# Every operator: a conv 3x3, a conv 1x1, a pooling, a skip and a none edge.
ALL_OPS = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
HAS_EXTRA = not tflite.missing()
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="pip install -e '.[tflite]' (tensorflow-cpu, tflite-micro)")


def _hidden_extra_run(*args):
  """experiments.export with tensorflow and tflite_micro made unimportable (sys.modules entries
  of None: import fails, importlib.util.find_spec gives None), installed or not."""
  code = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.modules['tflite_micro'] = None;"
          f" sys.argv = ['export'] + {list(args)!r};"
          " runpy.run_module('experiments.export', run_name='__main__')")
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.parametrize("fmt", ["tflite", "both"])
def test_missing_extra_is_one_line_naming_the_install_command(fmt, tmp_path):
  p = _hidden_extra_run(f"--arch={C100_OPT}", f"--out={tmp_path}", f"--format={fmt}")
  assert p.returncode == 2, p.stderr
  lines = p.stderr.strip().splitlines()
  assert len(lines) == 1 and "pip install -e '.[tflite]'" in lines[0], p.stderr
  assert lines[0].startswith(f"error: --format={fmt} needs"), lines[0]
  assert "tensorflow-cpu" in lines[0] and "tflite-micro" in lines[0]
  assert p.stdout == "" and not os.listdir(tmp_path)  # nothing computed, nothing written


def test_unknown_format_is_rejected(tmp_path):
  p = subprocess.run([sys.executable, "-m", "experiments.export", f"--arch={C100_OPT}",
                      f"--out={tmp_path}", "--format=tflm"], cwd=ROOT, capture_output=True,
                     text=True, timeout=300)
  assert p.returncode == 2 and "--format='tflm'" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def sample():
  c = train.default_config("cifar10")
  split = train.load_split(c)
  spec = data.config_spec(c)
  norm = lambda x: np.asarray(data.normalize(x, spec))  # noqa: E731
  return norm(split.x_train[:64]), norm(split.x_eval[:400]), split.y_eval[:400]


def _small(arch_str, seed, x_cal, channels=4, cells=1):
  """An initialised C=4, N=1 network as experiments.export initialises one (fixed seed, BatchNorm
  statistics of 4 sample images): its folded weights and Flax variables."""
  from experiments.export import batch_statistics
  arch = space.Arch.from_string(arch_str)
  c = train.default_config("cifar10")
  c.train.channels, c.train.cells_per_stage = channels, cells
  net = train.make_network(c, arch)
  st = train.init_state(c, net, train.make_optimizer(c, 1), jax.random.key(seed))
  params = jax.device_get(st.params)
  stats = batch_statistics(net, params, st.batch_stats, x_cal[:4])
  return arch, params, stats, export.fold_batchnorm(params, stats, arch.ops, cells)


def test_nhwc_network_equals_the_linen_network(sample):
  """What the TFLite converter receives (deploy_forward in NHWC) computes models.Network."""
  x_cal, x, _ = sample
  arch, params, stats, folded = _small(ALL_OPS, 0, x_cal)
  ref = export.jax_logits(params, stats, arch.ops, 4, 1, 10, x[:8])
  got = jax.jit(lambda z: export.deploy_forward(folded, z, arch.ops, 1, layout="NHWC"))(x[:8])
  np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


@needs_extra
def test_small_cell_converts_runs_in_tflm_and_records_its_arena(sample, tmp_path):
  x_cal, x, _ = sample
  arch, params, stats, folded = _small(ALL_OPS, 0, x_cal)
  ref = export.jax_logits(params, stats, arch.ops, 4, 1, 10, x[:64])
  rec = tflite.export_tflite(folded=folded, ops=arch.ops, cells_per_stage=1, reference_logits=ref,
                             check_images=x[:64], calibration_images=x_cal,
                             out_dir=str(tmp_path))
  path = rec["tflite_path"]
  assert os.path.getsize(path) == rec["tflite_bytes"] > 0
  interp = tflite.interpreter(path)
  i, o = interp.get_input_details(0), interp.get_output_details(0)
  assert i["dtype"] == np.int8 and tuple(i["shape"]) == (1, 32, 32, 3)
  assert o["dtype"] == np.int8 and tuple(o["shape"]) == (1, 10)
  ops = rec["tflite_operators"]
  assert ops["CONV_2D"] >= 1 + 2 * 3 + 3 * 2 and ops["AVERAGE_POOL_2D"] >= 3, ops
  assert not any("QUANTIZE" in k for k in ops), ops  # int8 end to end, no float islands
  a = rec["tflm_arena"]
  assert a["total"] == a["head"] + a["tail"] == rec["tflm_arena_bytes"]
  # The planned tensors hold at least the int8 input image and the stem's 32x32x4 output.
  assert a["head"] >= 32 * 32 * 3 + 32 * 32 * 4
  # The memory model predicts this file's arena to the byte without TensorFlow, and its size.
  from monas_jax.hardware import tflm
  g = tflm.graph(arch, "cifar10", 4, 1)
  assert tflm.arena(g) == {k: a[k] for k in ("head", "tail", "total")}
  assert abs(tflm.flatbuffer_bytes(g)["total"] / rec["tflite_bytes"] - 1) < 0.03
  # TFLM runs the model in an arena of exactly the recorded size, and not in much less.
  out = tflite.run(tflite.interpreter(path, arena_size=a["total"]), x[:2])
  np.testing.assert_array_equal(out, tflite.run(interp, x[:2]))
  with pytest.raises(RuntimeError, match="model_int8.tflite"):
    tflite.interpreter(path, arena_size=a["head"] // 2)
  # Dequantised logits near the float ones: within a few output steps.
  scale = float(o["quantization_parameters"]["scales"][0])
  got = tflite.run(interp, x[:64])
  assert np.max(np.abs(got - ref)) < 0.5 * np.ptp(ref)
  assert np.median(np.abs(got - ref)) < 8 * scale


@needs_extra
def test_float_tflite_in_tflm_equals_jax(sample, tmp_path):
  """The conversion itself is exact: unquantised, the .tflite computes the JAX network in TFLM
  (every operator on some edge), so the int8 model's differences are quantisation's."""
  x_cal, x, _ = sample
  arch, params, stats, folded = _small(ALL_OPS, 3, x_cal)
  ref = export.jax_logits(params, stats, arch.ops, 4, 1, 10, x[:16])
  path = tflite.convert_int8(folded, arch.ops, 1, 32, 3, x_cal[:4], str(tmp_path / "f.tflite"),
                             activation_bits=32)
  got = tflite.run(tflite.interpreter(path), x[:16])
  np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


@needs_extra
def test_c_array_holds_the_flatbuffer_and_compiles(sample, tmp_path):
  x_cal, x, _ = sample
  arch, params, stats, folded = _small(C100_OPT, 1, x_cal)
  path = tflite.convert_int8(folded, arch.ops, 1, 32, 3, x_cal[:16], str(tmp_path / "m.tflite"))
  h, cc = tflite.write_c_array(path, str(tmp_path))
  blob = open(path, "rb").read()
  src = open(cc).read()
  assert "alignas(16) const unsigned char g_model[]" in src
  assert f"const unsigned int g_model_len = {len(blob)};" in src
  body = src[src.index("{") + 1:src.index("};")]
  assert bytes(int(t, 16) for t in body.replace("\n", "").split(",")) == blob
  assert "extern const unsigned char g_model[];" in open(h).read()
  cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
  if cxx is None:
    pytest.skip("no C++ compiler on this machine")
  obj = tmp_path / "model_data.o"
  p = subprocess.run([cxx, "-std=c++11", "-c", cc, "-o", str(obj), f"-I{tmp_path}"],
                     capture_output=True, text=True)
  assert p.returncode == 0, p.stderr
  assert obj.stat().st_size >= len(blob)


@needs_extra
def test_c_array_compiles_with_cc(sample, tmp_path):
  """``cc -c model_data.cc``: the file is C++ (alignas), compiled by the C compiler driver, which
  picks the language from the .cc suffix, as a firmware Makefile does."""
  cc = shutil.which("cc")
  if cc is None:
    pytest.skip("no cc on this machine")
  x_cal, _, _ = sample
  arch, _, _, folded = _small(ALL_OPS, 2, x_cal)
  path = tflite.convert_int8(folded, arch.ops, 1, 32, 3, x_cal[:8], str(tmp_path / "m.tflite"))
  _, src = tflite.write_c_array(path, str(tmp_path))
  p = subprocess.run([cc, "-c", src, "-o", str(tmp_path / "m.o"), f"-I{tmp_path}"],
                     capture_output=True, text=True)
  assert p.returncode == 0, p.stderr


def test_c_array_name_must_be_an_identifier(tmp_path):
  f = tmp_path / "m.tflite"
  f.write_bytes(b"\x00")
  with pytest.raises(ValueError, match="not a C identifier"):
    tflite.write_c_array(str(f), str(tmp_path), name="9model")


def test_agreement_by_margin():
  ref = np.array([[0.0, 1.0], [0.0, 0.01], [2.0, 0.0], [0.0, 3.0]])
  got = np.array([[0.0, 1.0], [0.02, 0.0], [1.0, 0.0], [0.0, 1.0]])
  a = tflite.agreement(ref, got)
  assert a["argmax_agreement"] == 0.75 and a["n"] == 4
  assert sum(b["n"] for b in a["by_margin"]) == 4
  assert a["by_margin"][0]["agreement"] == 0.0  # the disagreement is the smallest margin


@needs_extra
@pytest.mark.slow
def test_export_command_tflite_gives_tflm_figures_and_verdicts(tmp_path):
  """The CLI end to end (C=4, N=1 untrained: the verdicts come from TFLM's figures)."""
  import json
  p = subprocess.run([sys.executable, "-m", "experiments.export", f"--arch={C100_OPT}",
                      f"--out={tmp_path}", "--format=both", "--calibration=16",
                      "--parity_images=40", "--channels=4", "--cells_per_stage=1"],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-2000:]
  rec = json.loads(p.stdout.strip().splitlines()[-1])
  for k in ("tflite_path", "tflm_arena_bytes", "tflite_bytes", "argmax_agreement", "onnx_path"):
    assert k in rec, k
  assert rec["flash_bytes"] == rec["tflite_bytes"] == os.path.getsize(rec["tflite_path"])
  assert rec["sram_bytes"] == rec["tflm_arena_bytes"]
  assert rec["estimate"]["tflm_arena_bytes"] == rec["tflm_arena_bytes"]  # what enforce_memory uses
  assert rec["fits_sram"]["stm32f746"] == (rec["tflm_arena_bytes"] <= 320 * 1024)
  assert os.path.isfile(tmp_path / "model_data.cc") and os.path.isfile(tmp_path / "model_data.h")
  assert rec["agreement_images"] == 40


@needs_extra
@pytest.mark.slow
def test_full_size_c100_optimum_parity_in_tflm(sample, tmp_path):
  """C=16, N=5 on 400 held-out images (benchmarks/tflite_check.py does 21 cells). The bound is
  what an untrained network reaches (RESULTS.md): the 98 % target is not met untrained."""
  x_cal, x, _ = sample
  arch, params, stats, folded = _small(C100_OPT, 0, x_cal, 16, 5)
  ref = export.jax_logits(params, stats, arch.ops, 16, 5, 10, x)
  rec = tflite.export_tflite(folded=folded, ops=arch.ops, cells_per_stage=5, reference_logits=ref,
                             check_images=x, calibration_images=x_cal, out_dir=str(tmp_path))
  assert rec["argmax_agreement"] >= 0.90, rec["agreement_by_margin"]
  # The disagreements are where the float logits are nearly tied.
  bins = rec["agreement_by_margin"]
  assert bins[-1]["agreement"] >= bins[0]["agreement"]
