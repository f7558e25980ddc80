"""Memory of the deployed NAS-Bench-201 network: flash (weights) and peak SRAM (activations).

Moved from ``proxies/cost.py`` (which re-exports ``deployment_memory``): it is deployment cost,
checked against the MCU profiles' budgets beside the latency model.

Memory of an int8 (or float32) deployment, the method:
- flash: every conv/dense weight at ``weight_bytes``; BatchNorm folded into the preceding conv;
  per output channel of every conv and dense layer a 4-byte bias, and in int8 a 4-byte
  requantisation multiplier; the head BatchNorm (not preceded by a conv) as a 4-byte scale and
  shift per channel.
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

import functools

import numpy as np

from monas_jax import data, space
from monas_jax.hardware import cell_graph

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
  out = {}
  for dtype in BYTES:
    out[f"flash_bytes_{dtype}"] = _flash_bytes(ops, spec, dtype, channels, cells_per_stage)
    out[f"peak_sram_bytes_{dtype}"] = _peak_sram_bytes(ops, spec, dtype, channels,
                                                       cells_per_stage)
  return out


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
  ``peak_sram_bytes_float32`` (method in the module docstring).
  """
  return dict(_memory(live_ops(arch), data.as_spec(dataset), channels, cells_per_stage))


def live_ops(arch) -> tuple[int, ...]:
  """The cell's operators with every dead one (its output cannot reach the cell output) made
  ``none``: compilers remove them (checked against the exported ONNX graphs, which do not hold
  them), so they take neither flash nor SRAM."""
  a = space.to_arch(arch)
  live = cell_graph.live_mask(a.to_mask(), np)
  return tuple(o if live[e, o] > 0 else _NONE for e, o in enumerate(a.ops))
