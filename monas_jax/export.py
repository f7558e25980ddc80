"""Deployment of one cell's network: BatchNorm folding, ONNX export, int8 quantisation, memory.

The exported network is ``models.Network(C, N, classes, ops_per_edge=cell)`` in inference mode,
rebuilt here as a pure JAX function of folded weights (``deploy_forward``) rather than exported
from the Linen module, for two reasons:

* BatchNorm is folded into the convolution before it (weights scaled per output channel, a
  bias added), so the ONNX graph holds Conv + bias only, as a deployed int8 model does. The head
  BatchNorm, which follows a sum of edges rather than a conv, stays a per-channel scale and shift.
* Layout is NCHW (ONNX's native Conv layout): with NHWC the converter wraps every Conv in two
  Transposes, which the MCU compiler would have to remove and which would distort the graph's
  activation memory. ``flax.linen.avg_pool(count_include_pad=False)`` (the cell's 3x3 pooling)
  also breaks jax2onnx's AvgPool conversion; here it is a ``lax.reduce_window`` sum divided by a
  constant per-pixel window count, which converts and equals Flax's result.

The ONNX model takes ``image``: float32 (1, 3, s, s) NCHW, pixels normalised as
``data.normalize`` does ((x / 255 - MEAN) / STD per channel), and returns ``logits`` (1, classes).
The int8 model (``quantize_int8``) is onnxruntime's static QDQ quantisation of it. Memory, as the
MCU budgets count it: flash = the int8 model's initializers (``weight_bytes``), SRAM = the
liveness peak of the graph's activations at one byte an element (``peak_activation_bytes``).

Optional dependencies (``pip install -e '.[deploy]'``): jax2onnx, onnx, onnxruntime.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import io, models, space

_SKIP = space.OP_INDEX["skip_connect"]
_CONV1, _CONV3 = space.OP_INDEX["nor_conv_1x1"], space.OP_INDEX["nor_conv_3x3"]
_POOL = space.OP_INDEX["avg_pool_3x3"]
_KERNEL = {_CONV1: 1, _CONV3: 3}


def _require(module: str):
  try:
    return __import__(module)
  except ImportError as e:
    raise ImportError(f"export needs {module}: pip install -e '.[deploy]' "
                      f"(jax2onnx, onnx, onnxruntime)") from e


# ----------------------------------------------------------------------------- folding

def _fold(conv_params, bn_params, bn_stats) -> dict[str, np.ndarray]:
  """Conv (HWIO kernel, no bias) followed by inference BatchNorm -> OIHW kernel and bias."""
  w = np.asarray(conv_params["kernel"], np.float64)
  g = np.asarray(bn_params["scale"], np.float64) / np.sqrt(
      np.asarray(bn_stats["var"], np.float64) + models.BN_EPS)
  b = np.asarray(bn_params["bias"], np.float64) - np.asarray(bn_stats["mean"], np.float64) * g
  # Folded in float64 and rounded once, so the folding adds no error beyond float32 rounding.
  return {"w": (w * g).transpose(3, 2, 0, 1).astype(np.float32), "b": b.astype(np.float32)}


def _relu_conv_bn(p, s) -> dict[str, np.ndarray]:
  return _fold(p["conv"], p["bn"], s["bn"])


def fold_batchnorm(params, batch_stats, ops: Iterable[int], cells_per_stage: int
                   ) -> dict[str, Any]:
  """The deployable weights of a cell's network: BatchNorm folded, kernels OIHW, numpy float32.

  Args:
    params, batch_stats: the Flax collections of ``models.Network(ops_per_edge=ops)``.
    ops: the cell's 6 operator indices.
    cells_per_stage: N.

  Returns a pytree of numpy arrays: ``stem`` {w, b}; per cell ``stage{s}_cell{i}`` {edge{e}:
  {w, b}} for conv edges; ``reduction{s}`` {conv_a, conv_b: {w, b}, shortcut: {w}}; ``head``
  {scale, shift, w (c, classes), b (classes,)}.
  """
  ops = tuple(int(o) for o in ops)
  out: dict[str, Any] = {"stem": _fold(params["stem_conv"], params["stem_bn"],
                                       batch_stats["stem_bn"])}
  for stage in range(3):
    if stage:
      r, rs = params[f"reduction{stage}"], batch_stats[f"reduction{stage}"]
      out[f"reduction{stage}"] = {
          "conv_a": _relu_conv_bn(r["conv_a"], rs["conv_a"]),
          "conv_b": _relu_conv_bn(r["conv_b"], rs["conv_b"]),
          "shortcut": {"w": np.asarray(r["shortcut"]["kernel"], np.float32).transpose(3, 2, 0, 1)}}
    for i in range(cells_per_stage):
      name = f"stage{stage}_cell{i}"
      cell = {}
      for e, o in enumerate(ops):
        if o in _KERNEL:
          op = space.OPS[o]
          cell[f"edge{e}"] = _relu_conv_bn(params[name][f"edge{e}"][op],
                                           batch_stats[name][f"edge{e}"][op])
      out[name] = cell
  h, hs = params["head"], batch_stats["head"]
  g = np.asarray(h["bn"]["scale"], np.float64) / np.sqrt(
      np.asarray(hs["bn"]["var"], np.float64) + models.BN_EPS)
  out["head"] = {"scale": g.astype(np.float32),
                 "shift": (np.asarray(h["bn"]["bias"], np.float64)
                           - np.asarray(hs["bn"]["mean"], np.float64) * g).astype(np.float32),
                 "w": np.asarray(h["classifier"]["kernel"], np.float32),
                 "b": np.asarray(h["classifier"]["bias"], np.float32)}
  return out


# ----------------------------------------------------------------------------- the network

def _conv(x, p, stride=1, layout="NCHW"):
  k = p["w"].shape[-1]
  y = jax.lax.conv_general_dilated(x, p["w"], (stride, stride), [(k // 2, k // 2)] * 2,
                                   dimension_numbers=(layout, "OIHW", layout))
  if "b" not in p:
    return y
  return y + (p["b"][None, :, None, None] if layout == "NCHW" else p["b"])


def _pool_counts(h: int, w: int) -> np.ndarray:
  """Pixels inside the image of each 3x3 window (pad 1): (1, 1, h, w) float32."""
  ones = np.pad(np.ones((h, w), np.float32), 1)
  c = sum(ones[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
  return c[None, None].astype(np.float32)


def avg_pool_3x3_nchw(x: jax.Array) -> jax.Array:
  """``models.avg_pool_3x3`` in NCHW, as a window sum over a constant count (converts to ONNX).

  x: (n, c, h, w) -> (n, c, h, w).
  """
  s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, 3, 3), (1, 1, 1, 1),
                            ((0, 0), (0, 0), (1, 1), (1, 1)))
  # A product with the reciprocal, not a division: onnxruntime quantises Mul (QLinearMul) but
  # leaves Div in float between a dequantise and a quantise. Differs from Flax's division by at
  # most an ulp.
  return s * (1.0 / _pool_counts(x.shape[2], x.shape[3]))


def avg_pool_3x3_nhwc(x: jax.Array) -> jax.Array:
  """``models.avg_pool_3x3`` in NHWC (the TFLite layout): x (n, h, w, c) -> (n, h, w, c).

  The TFLite converter turns this reduce_window sum over a window count into one
  AVERAGE_POOL_2D (count_include_pad=False semantics: TFLite's SAME average pooling divides by
  the pixels inside the image), so no count map is stored."""
  def window_sum(v):
    return jax.lax.reduce_window(v, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))
  # The converter's pattern for SAME average pooling: a window sum over the window sum of ones.
  return window_sum(x) / window_sum(jnp.ones_like(x))


def _cell(x, p, ops, layout="NCHW"):
  pool = avg_pool_3x3_nchw if layout == "NCHW" else avg_pool_3x3_nhwc
  nodes = [x]
  for node in range(1, space.NUM_NODES):
    acc = None
    for e, src, o in space.edges_into(node, ops):
      h = nodes[src]
      y = h if o == _SKIP else pool(h) if o == _POOL else _conv(
          jax.nn.relu(h), p[f"edge{e}"], 1, layout)
      acc = y if acc is None else acc + y
    # A node whose every input edge is `none` is zero (the mean over its operators' zeros). As
    # x * 0, not a constant: a constant would be folded by the converter through the operators
    # after it into large precomputed tensors (a conv of it is its bias map).
    nodes.append(x * 0.0 if acc is None else acc)
  return nodes[-1]


def deploy_forward(folded: dict[str, Any], x: jax.Array, ops: Iterable[int],
                   cells_per_stage: int, layout: str = "NCHW") -> jax.Array:
  """The inference network on folded weights. x: float32 (n, 3, s, s) NCHW normalised ->
  logits (n, classes). Equals ``models.Network(...).apply(..., train=False)`` on NHWC input.

  ``layout="NHWC"``: x (n, s, s, 3), every map NHWC (TFLite's layout, ``monas_jax.tflite``);
  the same weights (kernels stay OIHW, the convolution reads them so)."""
  ops = tuple(int(o) for o in ops)
  if layout not in ("NCHW", "NHWC"):
    raise ValueError(f"layout={layout!r}: give 'NCHW' or 'NHWC'")
  sp = (2, 3) if layout == "NCHW" else (1, 2)  # the spatial axes
  x = _conv(x, folded["stem"], 1, layout)
  for stage in range(3):
    if stage:
      r = folded[f"reduction{stage}"]
      y = _conv(jax.nn.relu(x), r["conv_a"], 2, layout)
      y = _conv(jax.nn.relu(y), r["conv_b"], 1, layout)
      win = tuple(2 if a in sp else 1 for a in range(4))
      s = jax.lax.reduce_window(x, 0.0, jax.lax.add, win, win, "VALID")
      s = s * 0.25 if layout == "NCHW" else s / 4.0  # TFLite: VALID AVERAGE_POOL_2D
      x = _conv(s, r["shortcut"], 1, layout) + y
    for i in range(cells_per_stage):
      x = _cell(x, folded[f"stage{stage}_cell{i}"], ops, layout)
  h = folded["head"]
  if layout == "NCHW":
    x = jax.nn.relu(x * h["scale"][None, :, None, None] + h["shift"][None, :, None, None])
  else:
    x = jax.nn.relu(x * h["scale"] + h["shift"])
  x = jnp.mean(x, axis=sp)
  return x @ h["w"] + h["b"]


# ----------------------------------------------------------------------------- ONNX

def export_onnx(folded: dict[str, Any], ops, cells_per_stage: int, image_size: int,
                path: str, image_channels: int = 3) -> str:
  """Writes the batch-1 float32 ONNX model (input ``image`` (1, image_channels, s, s) NCHW,
  output ``logits``) atomically.

  The weights are constants of the traced function, so they become the graph's initializers.
  """
  jax2onnx = _require("jax2onnx")
  ops = tuple(int(o) for o in ops)
  consts = jax.tree_util.tree_map(jnp.asarray, folded)

  def fn(image):
    return deploy_forward(consts, image, ops, cells_per_stage)

  shape = (1, image_channels, image_size, image_size)
  model = jax2onnx.to_onnx(fn, [jax.ShapeDtypeStruct(shape, jnp.float32)],
                           model_name="monas_cell", input_names=["image"],
                           output_names=["logits"])
  _fuse_gemm_bias(model)
  _fuse_conv_bias(model)
  _dedupe_initializers(model)
  _save_model_atomic(model, path)
  return path


def _initializers_and_consumers(g) -> tuple[dict, dict[str, list]]:
  """An ONNX graph's initialisers by name, and the nodes that read each tensor name."""
  consumers: dict[str, list] = {}
  for n in g.node:
    for t in n.input:
      consumers.setdefault(t, []).append(n)
  return {t.name: t for t in g.initializer}, consumers


def _fuse_gemm_bias(model) -> None:
  """Gemm(beta=0, dummy scalar C) + Add(bias) -> Gemm(C=bias, beta=1), in place.

  jax2onnx writes ``x @ w + b`` that way; onnxruntime's quantiser needs the bias inside the Gemm
  (it quantises it to int32 with the input and weight scales) and fails on the scalar C.
  """
  from onnx import helper, numpy_helper
  g = model.graph
  inits, consumers = _initializers_and_consumers(g)
  for gemm in [n for n in g.node if n.op_type == "Gemm"]:
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    users = consumers.get(gemm.output[0], [])
    if attrs.get("beta", 1.0) != 0.0 or len(users) != 1 or users[0].op_type != "Add":
      continue
    add = users[0]
    bias = [t for t in add.input if t != gemm.output[0]]
    if len(bias) != 1 or bias[0] not in inits:
      continue
    b = numpy_helper.to_array(inits[bias[0]])
    if b.ndim not in (1, 2) or (b.ndim == 2 and b.shape[0] != 1):
      continue
    b_name = gemm.name + "_bias"
    g.initializer.append(numpy_helper.from_array(b.reshape(-1), b_name))
    a_in, w_in = gemm.input[0], gemm.input[1]
    old_c = gemm.input[2] if len(gemm.input) > 2 else None
    del gemm.input[:]
    gemm.input.extend([a_in, w_in, b_name])
    for a in gemm.attribute:
      if a.name == "beta":
        a.f = 1.0
    gemm.output[0] = add.output[0]
    g.node.remove(add)
    for name in (old_c, bias[0]):
      if name is not None and name in inits and not any(name in n.input for n in g.node):
        g.initializer.remove(inits[name])


def _fuse_conv_bias(model) -> None:
  """Conv(x, w) + Add(bias (1, c, 1, 1)) -> Conv(x, w, bias (c,)), in place.

  jax2onnx writes the folded bias as a separate Add; fused, the quantiser stores it as an int32
  bias of QLinearConv (as MCU kernels do) instead of an int8 tensor added by a QLinearAdd, and
  the graph has no extra activation tensor per conv.
  """
  from onnx import numpy_helper
  g = model.graph
  inits, consumers = _initializers_and_consumers(g)
  for conv in [n for n in g.node if n.op_type == "Conv" and len(n.input) == 2]:
    users = consumers.get(conv.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add":
      continue
    add = users[0]
    bias = [t for t in add.input if t != conv.output[0]]
    if len(bias) != 1 or bias[0] not in inits:
      continue
    b = numpy_helper.to_array(inits[bias[0]])
    w = numpy_helper.to_array(inits[conv.input[1]]) if conv.input[1] in inits else None
    if w is None or b.size != w.shape[0] or b.shape not in ((w.shape[0],), (1, w.shape[0], 1, 1)):
      continue
    b_name = conv.name + "_bias"
    g.initializer.append(numpy_helper.from_array(b.reshape(-1), b_name))
    conv.input.append(b_name)
    conv.output[0] = add.output[0]
    g.node.remove(add)
    if not any(bias[0] in n.input for n in g.node):
      g.initializer.remove(inits[bias[0]])


def _dedupe_initializers(model) -> None:
  """One initializer for each distinct constant, in place. The converter writes the pooling's
  reciprocal window-count map once per pooling operator; a runtime stores it once per size."""
  g = model.graph
  seen: dict = {}
  rename: dict = {}
  for t in list(g.initializer):
    key = (t.data_type, tuple(t.dims), t.raw_data) if t.raw_data else None
    if key is None:
      continue
    if key in seen:
      rename[t.name] = seen[key]
      g.initializer.remove(t)
    else:
      seen[key] = t.name
  for n in g.node:
    for i, name in enumerate(n.input):
      if name in rename:
        n.input[i] = rename[name]


def _save_model_atomic(model, path: str) -> None:
  onnx = _require("onnx")
  with io.atomic_path(path, ".onnx") as tmp:
    onnx.save(model, tmp)


def session(path: str):
  """An onnxruntime CPU session of a model file."""
  ort = _require("onnxruntime")
  opts = ort.SessionOptions()
  opts.log_severity_level = 3  # no warnings about unused initializers etc. on stderr
  return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_onnx(sess, images_nchw: np.ndarray) -> np.ndarray:
  """Logits (n, classes) of a batch-1 model over float32 (n, 3, s, s) images, one at a time."""
  name = sess.get_inputs()[0].name
  return np.concatenate([sess.run(None, {name: images_nchw[i:i + 1]})[0]
                         for i in range(len(images_nchw))])


def quantize_int8(float_path: str, int8_path: str, calibration_nchw: np.ndarray) -> str:
  """Static post-training int8 quantisation (onnxruntime): per-channel int8 weights, int8
  activations, int32 biases, min-max calibrated on ``calibration_nchw`` float32 (n, 3, s, s)
  normalised images.

  QDQ format (QuantizeLinear / DequantizeLinear pairs around float operators): what onnxruntime
  recommends for int8 and what STM32Cube.AI (X-CUBE-AI) imports. Not the QOperator format: its
  quantiser drops a ReLU whose input is a quantised tensor by reusing that tensor's scale, which
  is wrong here, where the ReLU'd node also feeds skip connections and other edges unclipped.
  """
  _require("onnxruntime")
  from onnxruntime import quantization as q

  class Reader(q.CalibrationDataReader):
    def __init__(self):
      self.it = iter(calibration_nchw[i:i + 1] for i in range(len(calibration_nchw)))

    def get_next(self):
      x = next(self.it, None)
      return None if x is None else {"image": x}

  import logging
  root = logging.getLogger()
  level = root.level
  # The quantiser advises its pre-processing pass on the root logger at WARNING on every call;
  # shape inference, what it adds, is not needed on this fully static graph.
  root.setLevel(logging.ERROR)
  try:
    with io.atomic_path(int8_path, ".onnx") as tmp:
      q.quantize_static(float_path, tmp, Reader(), quant_format=q.QuantFormat.QDQ,
                        per_channel=True, activation_type=q.QuantType.QInt8,
                        weight_type=q.QuantType.QInt8,
                        calibrate_method=q.CalibrationMethod.MinMax)
  finally:
    root.setLevel(level)
  return int8_path


# ----------------------------------------------------------------------------- memory

def weight_bytes(path: str) -> dict[str, int]:
  """Bytes of the model's initializers (weights, biases, scales, zero points), by ONNX dtype name,
  plus ``total``. Flash holds these (the file adds only the graph's protobuf around them)."""
  onnx = _require("onnx")
  from onnx import numpy_helper
  m = onnx.load(path)
  out: dict[str, int] = {}
  for t in m.graph.initializer:
    a = numpy_helper.to_array(t)
    k = str(a.dtype)
    out[k] = out.get(k, 0) + int(a.nbytes)
  out["total"] = sum(out.values())
  return out


# Ops whose output is a view of their input (no new buffer on a runtime that reshapes in place).
_ALIAS_OPS = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def tensor_sizes(path: str, image: np.ndarray) -> dict[str, tuple[tuple[int, ...], int]]:
  """Shape and bytes of every tensor of a model, by running it once on ``image`` with every
  intermediate tensor made an output (onnx's shape inference does not know the quantised
  contrib operators). Returns name -> (shape, bytes)."""
  onnx = _require("onnx")
  ort = _require("onnxruntime")
  from onnx import helper
  m = onnx.load(path)
  g = m.graph
  outputs = {o.name for o in g.output}
  for n in g.node:
    for t in n.output:
      if t and t not in outputs:
        g.output.append(helper.ValueInfoProto(name=t))
        outputs.add(t)
  opts = ort.SessionOptions()
  opts.log_severity_level = 3
  # No graph optimisation: the tensors measured are those of the file, not of a rewritten graph.
  opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
  sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
  names = [o.name for o in sess.get_outputs()]
  vals = sess.run(names, {sess.get_inputs()[0].name: image})
  out = {n: (tuple(v.shape), int(v.nbytes)) for n, v in zip(names, vals)}
  out[sess.get_inputs()[0].name] = (tuple(image.shape), int(image.nbytes))
  return out


def peak_activation_bytes(path: str, image: np.ndarray,
                          bytes_per_element: Optional[int] = None) -> dict[str, Any]:
  """Peak bytes of live activation tensors over the graph's execution in node order.

  A tensor lives from the node that writes it (the graph input: from the start) to the last node
  that reads it (graph outputs: to the end); its bytes are those of the array onnxruntime
  produces (int8 activations 1 byte each). Initializers (flash) are not counted; reshaping ops
  (``_ALIAS_OPS``) alias their input. This is what a runtime's planner without in-place reuse
  needs: one that overwrites an input in place (ReLU, Add) needs less, scratch buffers (im2col)
  more.

  Args:
    path: the ONNX model.
    image: one input, float32 (1, 3, s, s).
    bytes_per_element: None: each tensor's own dtype; 1: every tensor counted at one byte an
      element, i.e. the float graph as an int8 deployment holds it (in the QDQ model every
      operator's output is quantised to int8).

  Returns ``peak_bytes``, ``peak_node`` (op type and name of the node running at the peak),
  ``input_bytes`` (the model's float input) and ``largest_tensor_bytes``.
  """
  onnx = _require("onnx")
  g = onnx.load(path).graph
  sizes = tensor_sizes(path, image)
  if bytes_per_element is not None:
    sizes = {k: (shp, int(np.prod(shp, dtype=np.int64)) * bytes_per_element)
             for k, (shp, _) in sizes.items()}
  inits = {t.name for t in g.initializer}
  buffer = {}  # tensor -> the buffer it lives in (itself, or an aliased input's)
  for t in g.input:
    buffer[t.name] = t.name
  for n in g.node:
    for t in n.output:
      if n.op_type in _ALIAS_OPS and n.input[0] in buffer:
        buffer[t] = buffer[n.input[0]]
      else:
        buffer[t] = t
  last = {}
  for i, n in enumerate(g.node):
    for t in n.input:
      if t and t not in inits and t in buffer:
        last[buffer[t]] = i
  for o in g.output:
    last[buffer[o.name]] = len(g.node)
  live = {t.name: sizes[t.name][1] for t in g.input if t.name not in inits}
  peak, peak_node = sum(live.values()), "(input)"
  for i, n in enumerate(g.node):
    for t in n.output:
      if t and buffer[t] == t:
        live[t] = sizes[t][1]
    total = sum(live.values())
    if total > peak:
      peak, peak_node = total, f"{n.op_type} {n.name}"
    for b in list(live):
      if last.get(b, -1) <= i:
        live.pop(b)
  acts = [sizes[b][1] for b in set(buffer.values()) if b in sizes]
  return {"peak_bytes": int(peak), "peak_node": peak_node,
          "input_bytes": int(sum(sizes[t.name][1] for t in g.input if t.name not in inits)),
          "largest_tensor_bytes": int(max(acts))}


# ----------------------------------------------------------------------------- the whole path

MAX_ABS_DIFF = 1e-4  # float32 ONNX vs the JAX network, logits


def jax_logits(params, batch_stats, ops, channels, cells_per_stage, num_classes,
               images_nhwc: np.ndarray) -> np.ndarray:
  """Logits (n, classes) of ``models.Network`` (inference mode) on float32 (n, s, s, c)
  normalised images.

  In chunks of at most 16 images through one compiled function (the last chunk padded): XLA
  constant-folds each 3x3 pooling's window-count map at the batch size, which at 400 images
  took minutes per pool-heavy network; the weights are arguments, not folded constants."""
  net = models.Network(channels, cells_per_stage, num_classes, ops_per_edge=tuple(ops))
  f = jax.jit(lambda p, s, x: net.apply({"params": p, "batch_stats": s}, x, train=False))
  x = np.asarray(images_nhwc, np.float32)
  k = min(16, len(x))
  out = []
  for i in range(0, len(x), k):
    chunk = x[i:i + k]
    pad = k - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
    out.append(np.asarray(f(params, batch_stats, chunk))[:k - pad])
  return np.concatenate(out)


def export_cell(*, ops, params, batch_stats, channels: int, cells_per_stage: int,
                num_classes: int, check_images: np.ndarray, calibration_images: np.ndarray,
                out_dir: str, eval_images: Optional[np.ndarray] = None,
                eval_labels: Optional[np.ndarray] = None) -> dict[str, Any]:
  """Folds, exports, checks, quantises and measures one cell's network.

  Args:
    ops: the cell's 6 operator indices.
    params, batch_stats: its Flax variables (trained, or an initialisation).
    channels, cells_per_stage, num_classes: C, N and the classifier width.
    check_images: float32 (n, s, s, c) normalised NHWC images for the JAX-vs-ONNX check
      (c = 1 or 3: the model's input channels).
    calibration_images: the same kind, for int8 calibration.
    out_dir: where ``model_float32.onnx`` and ``model_int8.onnx`` go.
    eval_images, eval_labels: optional labelled images for float32 and int8 accuracy (%).

  Returns a record: paths, ``max_abs_diff`` (logits, float32 ONNX vs JAX), ``int8_bytes``
  (initializers of the int8 model: int8 weights, int32 biases, scales), ``weight_bytes_by_dtype``,
  ``peak_sram_bytes_int8`` (graph liveness, one byte an element), ``peak_sram_bytes_float32``,
  and the accuracies when labels are given.
  """
  ops = tuple(int(o) for o in ops)
  size, in_ch = check_images.shape[1], check_images.shape[-1]
  folded = fold_batchnorm(params, batch_stats, ops, cells_per_stage)
  f32 = export_onnx(folded, ops, cells_per_stage, size, os.path.join(out_dir, "model_float32.onnx"),
                    in_ch)
  ref = jax_logits(params, batch_stats, ops, channels, cells_per_stage, num_classes, check_images)
  sess = session(f32)
  got = run_onnx(sess, check_images.transpose(0, 3, 1, 2).copy())
  diff = float(np.max(np.abs(got - ref)))
  i8 = quantize_int8(f32, os.path.join(out_dir, "model_int8.onnx"),
                     calibration_images.transpose(0, 3, 1, 2).copy())
  one = check_images[:1].transpose(0, 3, 1, 2).copy()
  wb = weight_bytes(i8)
  act8 = peak_activation_bytes(f32, one, bytes_per_element=1)
  act32 = peak_activation_bytes(f32, one)
  rec: dict[str, Any] = {
      "onnx_path": f32, "int8_path": i8, "max_abs_diff": diff,
      "matches": bool(diff <= MAX_ABS_DIFF), "tolerance": MAX_ABS_DIFF,
      "layout": f"input 'image' float32 (1, {in_ch}, {size}, {size}) NCHW, normalised "
                "(x / 255 - mean) / std per channel; output 'logits' (1, classes)",
      "int8_bytes": int(wb["total"]), "weight_bytes_by_dtype": wb,
      "float32_bytes": int(weight_bytes(f32)["total"]),
      "int8_file_bytes": int(os.path.getsize(i8)),
      "peak_sram_bytes_int8": act8["peak_bytes"], "peak_sram_bytes_float32": act32["peak_bytes"],
      "peak_node": act8["peak_node"],
  }
  if eval_images is not None:
    x = eval_images.transpose(0, 3, 1, 2).copy()
    y = np.asarray(eval_labels)
    rec["accuracy_float32"] = float(100 * np.mean(run_onnx(sess, x).argmax(1) == y))
    rec["accuracy_int8"] = float(100 * np.mean(run_onnx(session(i8), x).argmax(1) == y))
    rec["num_eval"] = int(len(y))
  return rec
