"""Memory of the deployed NAS-Bench-201 network: flash (weights) and peak SRAM (activations).

Two counts (``MODELS``): ``"onnx"``, this module's method below, the exported ONNX graph's
weights and activation liveness peak (no runtime's overhead; checked equal to the exported
graphs); and ``"tflm"`` / ``"tflm_cortex_m"``, the int8 ``.tflite`` file and the tensor arena
TensorFlow Lite Micro allocates for it (``hardware.tflm``; checked against TFLM), which is what
an MCU running TFLM needs. ``memory_table`` serves either; the search's ``enforce_memory`` uses
``config.search.memory_model`` (default ``"tflm"``).

Moved from ``proxies/cost.py`` (which re-exports ``deployment_memory``): it is deployment cost,
checked against the MCU profiles' budgets beside the latency model.

Memory of an int8 (or float32) deployment, the method:
- flash: every conv/dense weight at ``weight_bytes``; BatchNorm folded into the preceding conv;
  per output channel of every conv and dense layer a 4-byte bias, and in int8 a 4-byte
  requantisation multiplier; the head BatchNorm (not preceded by a conv) as a 4-byte scale and
  shift per channel; with a live 3x3 average pooling, its reciprocal window-count map, one
  element per pixel of each stage's maps (the exported graph's constant; until the check at
  64x64, benchmarks/RESULTS.md, it was left out: 1.3 KB at 32x32, 5.3 KB at 64x64 in int8).
- dead operators (whose output cannot reach the cell output, ``live_ops``) are removed first, as
  a compiler's dead-code elimination does: they cost neither flash nor SRAM.
- peak SRAM: activations only (weights stay in flash), from a liveness walk over the operator
  sequence of the exported graph (``_program``), for a memory planner without in-place reuse: a
  tensor lives from the op that writes it to the last op that reads it; a conv edge writes its
  ReLU output and its conv output, a pooling edge its window sum and its average, a skip
  connection aliases its input, a node's first contribution is its accumulator and each later one
  writes a new sum; ``none`` costs nothing. The peak is the largest sum of live tensors at any
  step. Runtime scratch buffers (im2col) and the interpreter's arena overhead are not included.
  (Until the comparison with the exported int8 ONNX graphs, benchmarks/RESULTS.md, the walk kept
  a separate accumulator per node besides each conv's output, 20-67 % above the graph on cells
  whose first edge into a node is a conv.)
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from monas_jax import data, space
from monas_jax.hardware import cell_graph
from monas_jax.hardware.cell_graph import live_ops  # also memory.live_ops, as before

_CONV1, _CONV3 = space.OP_INDEX["nor_conv_1x1"], space.OP_INDEX["nor_conv_3x3"]
_POOL, _SKIP, _NONE = (space.OP_INDEX[n] for n in ("avg_pool_3x3", "skip_connect", "none"))




BYTES = {"int8": 1, "float32": 4}


def _flash_bytes(ops: tuple[int, ...], spec: data.DataSpec, dtype: str, channels: int,
                 cells_per_stage: int) -> int:
  wb = BYTES[dtype]
  per_channel = 4 + (4 if dtype == "int8" else 0)  # bias (+ requantisation multiplier)
  c, total = channels, 0
  total += 3 * 3 * spec.channels * c * wb + c * per_channel  # stem conv with its BN folded
  for stage in range(3):
    if stage:
      c_in, c = c, 2 * c
      total += 9 * c_in * c * wb + c * per_channel  # conv_a
      total += 9 * c * c * wb + c * per_channel  # conv_b
      total += c_in * c * wb + c * per_channel  # shortcut 1x1
    for o in ops:
      if o in (_CONV1, _CONV3):
        k = 1 if o == _CONV1 else 3
        total += cells_per_stage * (k * k * c * c * wb + c * per_channel)
    if _POOL in ops:
      # The pooling's reciprocal window-count map (h_s x w_s), stored once per map size: the
      # exported graph multiplies the window sum by it (export.avg_pool_3x3_nchw).
      h = spec.image_size >> stage
      total += h * h * wb
  total += 2 * c * 4  # head BatchNorm scale and shift
  n_cls = spec.num_classes
  total += c * n_cls * wb + n_cls * per_channel
  return total


def _program(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int
             ) -> list[tuple[str, int, tuple[str, ...]]]:
  """The deployed network as a list of (output tensor, elements, input tensors) in execution
  order: the operator sequence of the exported graph (``monas_jax.export.deploy_forward``).

  A skip connection and the first contribution to a node alias their tensor (no new buffer); an
  edge sum after the first writes a new tensor; a zero node (all its edges ``none``) is a tensor
  when a live operator reads it. Dead operators must already be ``none`` (``live_ops``).
  """
  prog: list[tuple[str, int, tuple[str, ...]]] = []
  h, c = spec.image_size, channels
  prog.append(("stem", h * h * c, ("image",)))
  x = "stem"
  readers = {n: [e for e, (_, src) in enumerate(space.EDGES) if src == n and ops[e] != _NONE]
             for n in range(space.NUM_NODES)}
  for stage in range(3):
    if stage:
      t_in, h, c = h * h * c, h // 2, 2 * c
      t = h * h * c
      r = f"s{stage}"
      prog += [(f"{r}.relu_a", t_in, (x,)), (f"{r}.conv_a", t, (f"{r}.relu_a",)),
               (f"{r}.relu_b", t, (f"{r}.conv_a",)), (f"{r}.conv_b", t, (f"{r}.relu_b",)),
               (f"{r}.pool", t_in // 4, (x,)), (f"{r}.scaled", t_in // 4, (f"{r}.pool",)),
               (f"{r}.shortcut", t, (f"{r}.scaled",)),
               (f"{r}.out", t, (f"{r}.shortcut", f"{r}.conv_b"))]
      x = f"{r}.out"
    t = h * h * c
    for i in range(cells_per_stage):
      p = f"s{stage}c{i}"
      nodes = [x]
      for node in range(1, space.NUM_NODES):
        acc = None
        for e, src, o in space.edges_into(node, ops):
          if o == _SKIP:
            y = nodes[src]
          elif o == _POOL:
            prog += [(f"{p}.e{e}.sum", t, (nodes[src],)), (f"{p}.e{e}.pool", t, (f"{p}.e{e}.sum",))]
            y = f"{p}.e{e}.pool"
          else:
            prog += [(f"{p}.e{e}.relu", t, (nodes[src],)), (f"{p}.e{e}.conv", t, (f"{p}.e{e}.relu",))]
            y = f"{p}.e{e}.conv"
          if acc is None:
            acc = y
          else:
            prog.append((f"{p}.e{e}.add", t, (acc, y)))
            acc = f"{p}.e{e}.add"
        if acc is None:  # identically zero: computed (x * 0) only when something reads it
          acc = f"{p}.zero{node}"
          if readers[node] or node == space.NUM_NODES - 1:
            prog.append((acc, t, (x,)))
        nodes.append(acc)
      x = nodes[-1]
  prog += [("head.scale", h * h * c, (x,)), ("head.shift", h * h * c, ("head.scale",)),
           ("head.relu", h * h * c, ("head.shift",)), ("head.pool", c, ("head.relu",)),
           ("logits", spec.num_classes, ("head.pool",))]
  return prog


def _peak_sram_bytes(ops: tuple[int, ...], spec: data.DataSpec, dtype: str, channels: int,
                     cells_per_stage: int = 5) -> int:
  """Liveness peak of ``_program``: a tensor lives from the op that writes it to the last op
  that reads it (the logits to the end); the peak is the largest sum of live tensors."""
  prog = _program(ops, spec, channels, cells_per_stage)
  ab = BYTES[dtype]
  last = {}
  for i, (_, _, ins) in enumerate(prog):
    for name in ins:
      last[name] = i
  last["logits"] = len(prog)
  s = spec.image_size
  live = {"image": s * s * spec.channels * ab}
  peak = sum(live.values())
  for i, (out, n, _) in enumerate(prog):
    live[out] = n * ab
    peak = max(peak, sum(live.values()))
    for name in [k for k in live if last.get(k, -1) <= i]:
      live.pop(name)
  return peak


@functools.lru_cache(maxsize=None)
def _memory(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int):
  # The peak is the same for any N >= 1: between two cells only the cell output is live (every
  # tensor a cell writes is last read inside it), so cells 2..N of a stage repeat cell 1's live
  # sets; walking one cell per stage is 5x shorter at N=5 (checked against the full walk,
  # ``peak_sram_bytes``, in tests/test_memory_fit.py). Every tensor, the image included, has
  # the same bytes per element, so the float32 peak is 4x the int8 one.
  peak_int8 = _peak_sram_bytes(ops, spec, "int8", channels, min(cells_per_stage, 1))
  out = {}
  for dtype in BYTES:
    out[f"flash_bytes_{dtype}"] = _flash_bytes(ops, spec, dtype, channels, cells_per_stage)
    out[f"peak_sram_bytes_{dtype}"] = peak_int8 * BYTES[dtype]
  return out


def peak_sram_bytes(arch, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
                    cells_per_stage: int = 5, dtype: str = "int8") -> int:
  """Peak SRAM (bytes) of the live activations by the liveness walk over every cell of the
  network (``deployment_memory`` walks one cell per stage, which gives the same peak)."""
  return _peak_sram_bytes(live_ops(arch), data.as_spec(dataset), dtype, channels,
                          cells_per_stage)


MODELS = ("tflm", "tflm_cortex_m", "onnx")


def check_model(model: str, dtype: str = "int8") -> None:
  """Raises ValueError naming the allowed values for an unknown memory model or a TFLM model
  asked for a float32 deployment (TFLM's path here is the int8 ``.tflite``)."""
  if model not in MODELS:
    raise ValueError(f"memory model {model!r}: give one of {MODELS}")
  if model != "onnx" and dtype != "int8":
    raise ValueError(f"memory model {model!r} is the int8 TFLite deployment; for {dtype} use "
                     "'onnx'")


@functools.lru_cache(maxsize=None)
def _tflm_memory(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int
                 ) -> dict[str, int]:
  """The int8 TFLite deployment of one cell (dead operators already ``none``): ``tflite_bytes``
  and the arena total of each ``tflm.BUILDS`` (one memory plan serves both)."""
  from monas_jax.hardware import tflm
  g = tflm.graph(ops, spec, channels, cells_per_stage)
  out = {b: a["total"] for b, a in tflm.arenas(g).items()}
  out["tflite_bytes"] = tflm.flatbuffer_bytes(g)["total"]
  return out


def _cell_memory(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int,
                 dtype: str, model: str) -> tuple[int, int]:
  """(flash, SRAM) bytes of one cell whose dead operators are already ``none``."""
  if model == "onnx":
    m = _memory(ops, spec, channels, cells_per_stage)
    return m[f"flash_bytes_{dtype}"], m[f"peak_sram_bytes_{dtype}"]
  t = _tflm_memory(ops, spec, channels, cells_per_stage)
  return t["tflite_bytes"], t["host" if model == "tflm" else "cortex_m"]


def memory_table(ops, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
                 cells_per_stage: int = 5, dtype: str = "int8", model: str = "onnx"
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(flash, SRAM) bytes of many cells: ``ops`` (n, 6) operator indices -> two (n,) int64.

  ``model``: ``"onnx"``: the exported ONNX graph's weights and activation liveness peak (this
  module's method); ``"tflm"``: the int8 ``.tflite`` file and the tensor arena TFLM needs on the
  64-bit host build that ``monas_jax.tflite`` measures (``hardware.tflm``: the converter's graph,
  TFLM's greedy planner and persistent allocations; 2-3 ms per distinct cell); ``"tflm_cortex_m"``:
  the same with a 32-bit Cortex-M build's persistent sizes (predicted, not measured here).
  Dead operators are removed for all cells at once and each distinct live cell is computed once.
  """
  check_model(model, dtype)
  ops = np.asarray(ops, np.int64).reshape(-1, space.NUM_EDGES)
  masks = np.eye(space.NUM_OPS)[ops]
  live = cell_graph.live_mask(masks, np)
  live_codes = np.where(live[np.arange(len(ops))[:, None], np.arange(space.NUM_EDGES), ops] > 0,
                        ops, _NONE)
  spec = data.as_spec(dataset)
  uniq, inverse = np.unique(live_codes, axis=0, return_inverse=True)
  flash = np.empty(len(uniq), np.int64)
  sram = np.empty(len(uniq), np.int64)
  for i, u in enumerate(uniq):
    flash[i], sram[i] = _cell_memory(tuple(int(o) for o in u), spec, channels, cells_per_stage,
                                     dtype, model)
  inverse = np.asarray(inverse).reshape(-1)
  return flash[inverse], sram[inverse]


def deployment_memory(arch, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
                      cells_per_stage: int = 5) -> dict[str, int]:
  """Flash and peak SRAM (bytes) of the deployed network, int8 and float32.

  Args:
    arch: the cell (Arch, arch string, operator tuple or one-hot mask).
    dataset: one of data.DATASETS or a data.DataSpec: the input side s and channels (the input
      image, s x s x c, and every activation map scale with it) and the number of classes.
    channels: C, the first stage's width (stages have C, 2C, 4C).
    cells_per_stage: N.

  Returns ``flash_bytes_int8``, ``peak_sram_bytes_int8``, ``flash_bytes_float32``,
  ``peak_sram_bytes_float32`` (the ONNX graph's, method in the module docstring), and the int8
  TFLite deployment's (``hardware.tflm``): ``tflite_bytes`` (the flatbuffer in flash),
  ``tflm_arena_bytes`` (the arena on the 64-bit host build ``monas_jax.tflite`` measures) and
  ``tflm_arena_bytes_cortex_m`` (a 32-bit Cortex-M build's, predicted).
  """
  ops, spec = live_ops(arch), data.as_spec(dataset)
  out = dict(_memory(ops, spec, channels, cells_per_stage))
  t = _tflm_memory(ops, spec, channels, cells_per_stage)
  out.update(tflite_bytes=t["tflite_bytes"], tflm_arena_bytes=t["host"],
             tflm_arena_bytes_cortex_m=t["cortex_m"])
  return out


def _pareto_cells(ops: np.ndarray, flash: np.ndarray, sram: np.ndarray) -> np.ndarray:
  """The cells of ``ops`` that no other cell beats in both flash and SRAM (one per pair)."""
  order = np.lexsort((sram, flash))
  keep, best = [], None
  for i in order:
    if best is None or sram[i] < best:
      keep.append(i)
      best = sram[i]
  return ops[np.array(keep, np.int64)]


def fitting_networks(ops, dataset, channels: int, cells_per_stage: int, sram_bytes: int,
                     flash_bytes: int, dtype: str = "int8", model: str = "onnx"
                     ) -> dict[str, "int | None"]:
  """What network would fit an MCU when none of the cells ``ops`` (n, 6) does at this size.

  The candidates are the cells of ``ops`` that are cheapest in memory at this size (none beaten
  in both flash and SRAM); each field changes one size and keeps the others:

  Returns:
    ``channels``: the largest C below ``channels`` at which one of them fits (None: not even
    C=1); ``cells_per_stage``: the largest N below ``cells_per_stage`` (only flash depends on
    N); ``image_size``: the largest side below the given one, a multiple of 4 and at least 8;
    ``channels_at_one_cell``: the largest C with N = 1 (for when no single change fits).
    Memory grows with each of them, so the first fit counting down is the largest.
  """
  spec = data.as_spec(dataset)
  ops = np.asarray(ops, np.int64).reshape(-1, space.NUM_EDGES)
  flash, sram = memory_table(ops, spec, channels, cells_per_stage, dtype, model)
  cand = _pareto_cells(ops, flash, sram)

  def fits(spec_, c, n):
    f, s = memory_table(cand, spec_, c, n, dtype, model)
    return bool(np.any((f <= flash_bytes) & (s <= sram_bytes)))

  def largest(values, fn):
    return next((v for v in values if fn(v)), None)

  return {
      "channels": largest(range(channels - 1, 0, -1), lambda c: fits(spec, c, cells_per_stage)),
      "cells_per_stage": largest(range(cells_per_stage - 1, 0, -1),
                                 lambda n: fits(spec, channels, n)),
      "image_size": largest(range(spec.image_size - 4, 7, -4), lambda s: fits(
          dataclasses.replace(spec, image_size=s, pad=data.default_pad(s)), channels,
          cells_per_stage)),
      "channels_at_one_cell": largest(range(channels, 0, -1), lambda c: fits(spec, c, 1)),
  }


def stem_output_bytes(dataset, channels: int, dtype: str = "int8") -> int:
  """Bytes of the stem's output, image_size^2 x C: the largest map of stage 0, which every cell
  reads and no cell choice shrinks."""
  s = data.as_spec(dataset).image_size
  return s * s * channels * BYTES[dtype]
