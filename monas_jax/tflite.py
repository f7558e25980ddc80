"""TensorFlow Lite (int8) export of a cell's network, run in the TensorFlow Lite Micro interpreter.

The path MCU projects ship: the folded network (``export.fold_batchnorm``) as the pure JAX
function ``export.deploy_forward(..., layout="NHWC")`` -> ``jax2tf.convert`` -> ``tf.function``
-> ``tf.lite.TFLiteConverter`` with full-integer post-training quantisation (int8 input and
output, per-channel int8 convolution weights, int32 biases, activations calibrated on a
representative dataset of normalised training images) -> ``model_int8.tflite``. That file is run
by TensorFlow Lite Micro's Python interpreter (``tflite_micro.python.tflite_micro.runtime``: the
reference kernels and memory planner the firmware links, compiled for this host), whose
recording allocator gives the tensor arena the model needs, and is written as the C array
``model_data.cc`` / ``model_data.h`` that a Cortex-M project compiles into flash.

The ``.tflite`` takes ``int8 (1, s, s, c)`` NHWC: the normalised image ((x / 255 - mean) / std
per channel, as ``data.normalize``) quantised with the input tensor's scale and zero point, and
returns ``int8 (1, classes)`` logits (dequantise with the output's scale and zero point).

Optional dependencies (``pip install -e '.[tflite]'``): tensorflow-cpu (the converter) and
tflite-micro (the interpreter).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from typing import Any, Optional

import numpy as np

from monas_jax import io

INSTALL = "pip install -e '.[tflite]'"
_MODULES = (("tensorflow", "tensorflow-cpu"), ("tflite_micro", "tflite-micro"))


def missing() -> list[str]:
  """The packages of the ``tflite`` extra that are not installed (cheap: imports nothing)."""
  def absent(mod):
    try:
      return importlib.util.find_spec(mod) is None
    except (ImportError, ValueError):  # a broken or blocked installation
      return True
  return [pkg for mod, pkg in _MODULES if absent(mod)]


def require(what: str = "TFLite export") -> None:
  """Raises ImportError with one line naming ``what`` needs it and the install command when the
  extra is missing."""
  gone = missing()
  if gone:
    raise ImportError(f"{what} needs {' and '.join(gone)} (not installed): {INSTALL}")


def _tf():
  require()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN / CUDA banners
  import tensorflow as tf
  return tf


def _runtime():
  require()
  from tflite_micro.python.tflite_micro import runtime
  return runtime


# ----------------------------------------------------------------------------- conversion

def convert_int8(folded: dict[str, Any], ops, cells_per_stage: int, image_size: int,
                 image_channels: int, calibration_nhwc: np.ndarray, path: str,
                 activation_bits: int = 8) -> str:
  """Writes the full-integer int8 ``.tflite`` of the folded network atomically; returns ``path``.

  Args:
    folded: ``export.fold_batchnorm``'s weights (BatchNorm folded into each convolution).
    ops, cells_per_stage: the cell's 6 operator indices and N.
    image_size, image_channels: the input side s and channels c.
    calibration_nhwc: float32 (n, s, s, c) normalised training images, the converter's
      representative dataset (the activation ranges of every tensor; one image a step).
    path: the ``.tflite`` file to write.
    activation_bits: 8 (the deployment: int8 everything), 16 (TFLite's 16x8 mode: int16
      activations, input and output, int8 weights) or 32 (no quantisation: a float32 model,
      which checks the conversion itself against JAX); 16 and 32 are diagnostics.
  """
  import jax
  import jax.numpy as jnp
  from jax.experimental import jax2tf
  from monas_jax import export
  tf = _tf()
  if calibration_nhwc.ndim != 4 or calibration_nhwc.shape[1:] != (image_size, image_size,
                                                                  image_channels):
    raise ValueError(f"calibration images: shape {calibration_nhwc.shape}, expected "
                     f"(n, {image_size}, {image_size}, {image_channels}) NHWC")
  ops = tuple(int(o) for o in ops)
  consts = jax.tree_util.tree_map(jnp.asarray, folded)

  def fn(image):
    return export.deploy_forward(consts, image, ops, cells_per_stage, layout="NHWC")

  f = tf.function(jax2tf.convert(fn, with_gradient=False), autograph=False,
                  input_signature=[tf.TensorSpec((1, image_size, image_size, image_channels),
                                                 tf.float32, name="image")])
  conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
  if activation_bits != 32:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
  calib = np.asarray(calibration_nhwc, np.float32)

  def representative():
    for i in range(len(calib)):
      yield [calib[i:i + 1]]

  if activation_bits != 32:
    conv.representative_dataset = representative
  if activation_bits == 32:
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  elif activation_bits == 8:
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
  elif activation_bits == 16:
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int16
  else:
    raise ValueError(f"activation_bits={activation_bits}: give 8, 16 or 32")
  with _quiet_fd(2):  # the converter's MLIR pass log on the C++ stderr
    blob = conv.convert()
  with io.atomic_path(path, ".tflite") as tmp:
    with open(tmp, "wb") as fh:
      fh.write(blob)
  return path


def operator_counts(path: str) -> dict[str, int]:
  """The builtin operators of a ``.tflite`` file and how often each occurs (subgraph 0)."""
  out: dict[str, int] = {}
  for kind, _, _ in operator_sequence(path):
    out[kind] = out.get(kind, 0) + 1
  return dict(sorted(out.items()))


def operator_sequence(path: str) -> list[list]:
  """[builtin name, fused ReLU (bool), output elements] of each operator of a ``.tflite`` file
  (subgraph 0), in execution order: what ``hardware.tflm.graph`` predicts."""
  runtime = _runtime()
  from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
  with open(path, "rb") as fh:
    m = runtime.convert_bytearray_to_object(bytearray(fh.read()))
  names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
  g = m.subgraphs[0]
  out = []
  for op in g.operators:
    kind = names.get(runtime.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex]),
                     "?")
    act = getattr(op.builtinOptions, "fusedActivationFunction", 0) if op.builtinOptions else 0
    out.append([kind, bool(act), int(np.prod(g.tensors[op.outputs[0]].shape))])
  return out


# ----------------------------------------------------------------------------- TFLM

@contextlib.contextmanager
def _quiet_fd(fd: int, sink=None):
  """Redirects an OS-level file descriptor (C++ logging) to ``sink`` (a file) or nowhere."""
  stream = sys.stderr if fd == 2 else sys.stdout
  stream.flush()
  saved = os.dup(fd)
  target = sink if sink is not None else open(os.devnull, "wb")
  try:
    os.dup2(target.fileno(), fd)
    yield
  finally:
    stream.flush()
    os.dup2(saved, fd)
    os.close(saved)
    if sink is None:
      target.close()


def interpreter(path: str, arena_size: Optional[int] = None):
  """TFLM's Python interpreter of a ``.tflite`` file (allocation recording on), with a tensor
  arena of ``arena_size`` bytes (default 4 MiB: ample for any NAS-Bench-201 network here; the
  arena it really needs is ``arena_bytes``). Raises RuntimeError naming the file when TFLM
  cannot allocate or does not support an operator."""
  runtime = _runtime()
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such .tflite file")
  try:
    with _quiet_fd(2):
      return runtime.Interpreter.from_file(path, arena_size=arena_size or (4 << 20))
  except RuntimeError as e:
    raise RuntimeError(f"{path}: TFLM could not prepare the model with a {arena_size or 4 << 20} "
                       f"B arena: {e}") from None


_ALLOC = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_KIND = re.compile(r"'([^']+)' used (\d+) bytes")


def arena_bytes(interp) -> dict[str, Any]:
  """The tensor arena TFLM's recording allocator used, from ``print_allocations`` (C++ stderr).

  Returns bytes: ``total`` (= ``head`` + ``tail``: what ``arena_size`` must be at least),
  ``head`` (non-persistent: the planned activation buffers and kernels' scratch buffers, one
  memory plan reused by every operator), ``tail`` (persistent: tensor and node structs,
  quantisation parameters, kernels' per-op data), and ``by_kind`` (each persistent kind's bytes).
  Host figures: TFLM's structs hold pointers, 8 bytes here and 4 on a 32-bit Cortex-M, so the
  persistent part is larger on this host than on the MCU; the head does not depend on it.
  """
  with tempfile.TemporaryFile() as f:
    with _quiet_fd(2, f):
      interp.print_allocations()
    f.seek(0)
    text = f.read().decode("utf-8", "replace")
  got = {k: int(v) for k, v in _ALLOC.findall(text)}
  if set(got) != {"total", "head", "tail"}:
    raise RuntimeError(f"TFLM print_allocations gave no arena figures: {text[:300]!r}")
  got["by_kind"] = {k: int(v) for k, v in _KIND.findall(text)}
  return got


def quantize_input(interp, images_nhwc: np.ndarray) -> np.ndarray:
  """float32 (n, s, s, c) normalised images -> int8 with the model's input scale, zero point."""
  q = interp.get_input_details(0)["quantization_parameters"]
  s, z = float(q["scales"][0]), int(q["zero_points"][0])
  return np.clip(np.round(images_nhwc / s) + z, -128, 127).astype(np.int8)


def run(interp, images_nhwc: np.ndarray) -> np.ndarray:
  """Dequantised float32 logits (n, classes) of float32 (n, s, s, c) normalised images, one
  invocation of the batch-1 model per image."""
  if interp.get_input_details(0)["dtype"] == np.float32:  # a float model (activation_bits=32)
    out = []
    for i in range(len(images_nhwc)):
      interp.set_input(np.asarray(images_nhwc[i:i + 1], np.float32), 0)
      interp.invoke()
      out.append(np.array(interp.get_output(0), np.float32))
    return np.concatenate(out)
  q = interp.get_output_details(0)["quantization_parameters"]
  s, z = float(q["scales"][0]), int(q["zero_points"][0])
  xq = quantize_input(interp, images_nhwc)
  out = []
  for i in range(len(xq)):
    interp.set_input(xq[i:i + 1], 0)
    interp.invoke()
    out.append((interp.get_output(0).astype(np.float32) - z) * s)
  return np.concatenate(out)


def run_desktop(path: str, images_nhwc: np.ndarray) -> np.ndarray:
  """The same as ``run`` in TensorFlow's desktop TFLite interpreter (optimised kernels): a
  comparison for the TFLM figures, not a substitute for them."""
  tf = _tf()
  with _quiet_fd(2):
    it = tf.lite.Interpreter(model_path=path)
  it.allocate_tensors()
  i, o = it.get_input_details()[0], it.get_output_details()[0]
  s, z = i["quantization"]
  so, zo = o["quantization"]
  out = []
  for k in range(len(images_nhwc)):
    info = np.iinfo(i["dtype"])
    xq = np.clip(np.round(images_nhwc[k:k + 1] / s) + z, info.min, info.max).astype(i["dtype"])
    it.set_tensor(i["index"], xq)
    it.invoke()
    out.append((it.get_tensor(o["index"]).astype(np.float32) - zo) * so)
  return np.concatenate(out)


# ----------------------------------------------------------------------------- the C array

def write_c_array(tflite_path: str, out_dir: str, name: str = "g_model") -> tuple[str, str]:
  """Writes ``model_data.h`` and ``model_data.cc`` (atomically): the ``.tflite`` bytes as
  ``alignas(16) const unsigned char name[]`` and ``const unsigned int name_len``, as TFLM's
  examples ship a model (the flatbuffer is read in place from flash; 16-byte alignment is what
  TFLM asks of a model buffer). Returns (header path, source path)."""
  if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
    raise ValueError(f"C array name {name!r} is not a C identifier")
  with open(tflite_path, "rb") as fh:
    blob = fh.read()
  guard = f"MONAS_{name.upper()}_DATA_H_"
  header = (f"// Generated by monas_jax.tflite from {os.path.basename(tflite_path)}: the int8\n"
            f"// TensorFlow Lite model, {len(blob)} bytes. Pass {name} to tflite::GetModel().\n"
            f"#ifndef {guard}\n#define {guard}\n\n"
            f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n\n"
            f"#endif  // {guard}\n")
  rows = [", ".join(f"0x{b:02x}" for b in blob[i:i + 12]) for i in range(0, len(blob), 12)]
  source = (f'#include "model_data.h"\n\n'
            f"// 16-byte aligned, as TFLM requires of the model buffer.\n"
            f"alignas(16) const unsigned char {name}[] = {{\n  " + ",\n  ".join(rows) +
            f"\n}};\nconst unsigned int {name}_len = {len(blob)};\n")
  paths = []
  for fname, text in (("model_data.h", header), ("model_data.cc", source)):
    p = os.path.join(out_dir, fname)
    with io.atomic_path(p, os.path.splitext(fname)[1]) as tmp:
      with open(tmp, "w") as fh:
        fh.write(text)
    paths.append(p)
  return paths[0], paths[1]


# ----------------------------------------------------------------------------- the whole path

def agreement(reference: np.ndarray, got: np.ndarray) -> dict[str, Any]:
  """Top-1 agreement of two logit arrays (n, classes), overall and by the reference's margin
  (top-1 minus top-2 logit, in units of the reference logits' standard deviation).

  Returns ``argmax_agreement`` (fraction in [0, 1]), ``n``, and ``by_margin``: for margin
  quartiles of the reference, each bin's range, images and agreement."""
  ref_top = reference.argmax(1)
  agree = ref_top == got.argmax(1)
  srt = np.sort(reference, axis=1)
  margin = (srt[:, -1] - srt[:, -2]) / max(float(reference.std()), 1e-12)
  edges = np.quantile(margin, [0, 0.25, 0.5, 0.75, 1.0])
  bins = []
  for lo, hi, k in zip(edges[:-1], edges[1:], range(4)):
    m = (margin >= lo) & ((margin <= hi) if k == 3 else (margin < hi))
    if m.any():
      bins.append({"margin_from": float(lo), "margin_to": float(hi), "n": int(m.sum()),
                   "agreement": float(agree[m].mean())})
  return {"argmax_agreement": float(agree.mean()), "n": int(len(agree)), "by_margin": bins}


def export_tflite(*, folded: dict[str, Any], ops, cells_per_stage: int,
                  reference_logits: np.ndarray, check_images: np.ndarray,
                  calibration_images: np.ndarray, out_dir: str,
                  eval_labels: Optional[np.ndarray] = None) -> dict[str, Any]:
  """Converts, runs in TFLM, measures and writes the C array for one cell's network.

  Args:
    folded, ops, cells_per_stage: the folded network (``export.fold_batchnorm``).
    reference_logits: float32 (k, classes): the JAX float32 network on the first k of
      ``check_images`` (k <= m): the parity check's images.
    check_images: float32 (m, s, s, c) normalised NHWC images, run once in TFLM.
    calibration_images: the same kind (training images), the representative dataset.
    out_dir: where ``model_int8.tflite``, ``model_data.cc`` and ``model_data.h`` go.
    eval_labels: optional (m,) labels of ``check_images``, for the int8 accuracy (%) in TFLM.

  Returns ``tflite_path``, ``tflite_bytes`` (the flatbuffer: what flash holds),
  ``tflm_arena_bytes`` (the recorded arena total) and ``tflm_arena`` (head, tail, kinds),
  ``argmax_agreement`` (TFLM int8 vs JAX float32 top-1, fraction) with ``agreement_by_margin``,
  ``tflite_operators``, the C array paths, and ``accuracy_int8_tflm`` when labels are given.
  """
  size, ch = check_images.shape[1], check_images.shape[3]
  path = convert_int8(folded, ops, cells_per_stage, size, ch, calibration_images,
                      os.path.join(out_dir, "model_int8.tflite"))
  interp = interpreter(path)
  if len(reference_logits) > len(check_images):
    raise ValueError(f"{len(reference_logits)} reference logits for {len(check_images)} images")
  got = run(interp, check_images)
  arena = arena_bytes(interp)
  ag = agreement(reference_logits, got[:len(reference_logits)])
  h, cc = write_c_array(path, out_dir)
  qi = interp.get_input_details(0)["quantization_parameters"]
  qo = interp.get_output_details(0)["quantization_parameters"]
  rec: dict[str, Any] = {
      "tflite_path": path, "tflite_bytes": int(os.path.getsize(path)),
      "tflm_arena_bytes": arena["total"], "tflm_arena": arena,
      "argmax_agreement": ag["argmax_agreement"], "agreement_images": ag["n"],
      "agreement_by_margin": ag["by_margin"], "tflite_operators": operator_counts(path),
      "c_array": {"header": h, "source": cc},
      "tflite_layout": f"input int8 (1, {size}, {size}, {ch}) NHWC: the normalised image "
                       "quantised with the input scale and zero point; output int8 (1, classes)",
      "tflite_input_quantization": {"scale": float(qi["scales"][0]),
                                    "zero_point": int(qi["zero_points"][0])},
      "tflite_output_quantization": {"scale": float(qo["scales"][0]),
                                     "zero_point": int(qo["zero_points"][0])},
  }
  if eval_labels is not None:
    rec["accuracy_int8_tflm"] = float(100 * np.mean(got.argmax(1) == np.asarray(eval_labels)))
  return rec


# ----------------------------------------------------------------------------- the graph's memory

_DTYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}  # schema TensorType


def graph_memory(path: str) -> dict[str, Any]:
  """What a ``.tflite`` file holds and its activations' liveness peak, from the flatbuffer.

  Returns bytes: ``file`` (the flatbuffer), ``constant_data`` (the buffers of constant tensors:
  int8 weights, int32 biases), ``quantization_params`` (every tensor's scales as float32 and
  zero points as int64, as the schema stores them), ``names`` (tensor name strings), and
  ``activation_peak`` (the largest sum of live non-constant tensors over the operators in order,
  a tensor live from its writer to its last reader, the graph input from the start and output
  to the end: an ideal planner without in-place reuse or scratch; TFLM's arena head is compared
  with it), ``activation_tensors``.
  """
  runtime = _runtime()
  with open(path, "rb") as fh:
    raw = fh.read()
  m = runtime.convert_bytearray_to_object(bytearray(raw))
  g = m.subgraphs[0]
  def nbytes(t):
    n = int(np.prod(t.shape)) if t.shape is not None and len(t.shape) else 1
    return n * _DTYPE_BYTES.get(t.type, 4)
  const = set()
  data_bytes = 0
  for k, t in enumerate(g.tensors):
    b = m.buffers[t.buffer] if t.buffer < len(m.buffers) else None
    if b is not None and b.data is not None and len(b.data):
      const.add(k)
      data_bytes += len(b.data)
  qbytes = 0
  for t in g.tensors:
    q = t.quantization
    if q is not None:
      qbytes += 4 * (0 if q.scale is None else len(q.scale))
      qbytes += 8 * (0 if q.zeroPoint is None else len(q.zeroPoint))
  names = sum(len(t.name or b"") for t in g.tensors)
  ops = list(g.operators)
  last = {}
  for i, op in enumerate(ops):
    for k in op.inputs:
      if k >= 0 and k not in const:
        last[k] = i
  for k in g.outputs:
    last[k] = len(ops)
  live = {k: nbytes(g.tensors[k]) for k in g.inputs}
  peak = sum(live.values())
  acts = set(live)
  for i, op in enumerate(ops):
    for k in op.outputs:
      live[k] = nbytes(g.tensors[k])
      acts.add(k)
    peak = max(peak, sum(live.values()))
    for k in [k for k in live if last.get(k, -1) <= i]:
      live.pop(k)
  return {"file": len(raw), "constant_data": int(data_bytes), "quantization_params": int(qbytes),
          "names": int(names), "activation_peak": int(peak), "activation_tensors": len(acts),
          "tensors": len(g.tensors), "operators": len(ops)}
