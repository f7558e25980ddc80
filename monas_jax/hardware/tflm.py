"""The int8 TFLite graph of a cell's network and the memory TFLite Micro gives it, predicted.

``monas_jax.tflite`` converts a network and runs it in TFLM, which needs TensorFlow; a search
must judge thousands of cells in milliseconds without it. This module predicts, from the cell
alone, what that path measures:

- ``graph``: the operators of the converted ``.tflite`` in the converter's order. It follows what
  the converter does to ``export.deploy_forward``'s trace (checked operator by operator against
  converted files, ``benchmarks/tflm_model_check.py``): equal values are computed once (one ReLU
  of a node for every convolution that reads it, one pooling of a node for every pooling edge,
  one ``x * 0`` per cell for its zero nodes); a ReLU is fused into the operator that writes its
  input when nothing else reads that input, and the fused operator takes the ReLU's place in the
  order; a MUL or ADD by a constant after a convolution is folded into it; a stride-2 3x3
  convolution (PyTorch padding (1, 1), not TFLite's SAME (0, 1)) is an explicit PAD and a VALID
  convolution; a convolution of one input channel (a grayscale stem) is depthwise; a 3x3 average
  pooling is one AVERAGE_POOL_2D; the head is MUL, ADD (+ReLU), SUM and FULLY_CONNECTED;
  operators whose result reaches no output are gone.
- ``arena``: TFLM's tensor arena for that graph. The head (non-persistent) is TFLM's
  GreedyMemoryPlanner run on the graph's activation tensors (sizes rounded up to 16 bytes, each
  live from the operator that writes it to the last that reads it, the input from the first
  operator and the output to the last); the tail (persistent) counts TFLM's per-tensor and
  per-operator structs, the kernels' per-operator data (per output channel of a convolution an
  int32 multiplier and shift) and the interpreter's own allocations, with the struct sizes of a
  ``Build`` (``"host"``: the 64-bit Python wheel, where it is measured; ``"cortex_m"``: 32-bit).
  Both assume TFLM's reference kernels (CMSIS-NN's ask for scratch buffers of their own).
- ``flatbuffer_bytes``: the ``.tflite`` file: the constant buffers (int8 weights, int32 biases,
  the head's int8 scale and shift, the PAD and SUM parameters), each tensor's quantisation
  parameters (a float32 scale and an int64 zero point per channel), and a table entry per tensor,
  operator and buffer (see ``FLATBUFFER_TENSOR_BYTES``).

The converter's output depends on constant values in two places this module follows for an
initialised network: a cell whose output is zero has a zero head shift (dropped) and a uniform
head scale (a scalar); and convolutions that read a zero node have zero biases, which the file
stores once (the flatbuffer then is up to 3.6 % smaller than predicted).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

from monas_jax import data, space
from monas_jax.hardware import cell_graph

_CONV1, _POOL, _SKIP = (space.OP_INDEX[n] for n in ("nor_conv_1x1", "avg_pool_3x3", "skip_connect"))

# Builtin operators with a fused activation.
_FUSES_RELU = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "AVERAGE_POOL_2D")
ALIGN = 16  # TFLM's buffer alignment: planned buffers and kernels' persistent buffers


def _align(n: int) -> int:
  return -(-n // ALIGN) * ALIGN


@dataclasses.dataclass
class Op:
  """One operator of the predicted graph.

  kind: the TFLite builtin ("CONV_2D", "ADD", ...). ins: input activation ids; out: output id.
  consts: (bytes, quantised channels, key) of each constant input tensor (0 channels: not
  quantised, e.g. PAD's int32 paddings; equal non-None keys are one tensor in the file, as the
  converter stores equal constants once). channels: output channels (per-channel kernel data).
  fused: a ReLU folded in. key: equal keys are equal values (computed once).
  """

  kind: str
  ins: tuple[int, ...]
  out: int
  consts: tuple[tuple[int, int, Optional[str]], ...] = ()
  channels: int = 0
  fused: bool = False
  key: Optional[tuple] = None


@dataclasses.dataclass
class Graph:
  """The predicted ``.tflite`` graph: operators in order and every activation's bytes (int8)."""

  ops: list[Op]
  sizes: dict[int, int]
  input: int
  output: int


class _Builder:
  def __init__(self):
    self.ops: list[Op] = []
    self.sizes: dict[int, int] = {}
    self._seen: dict[tuple, int] = {}

  def value(self, nbytes: int) -> int:
    v = len(self.sizes)
    self.sizes[v] = nbytes
    return v

  def op(self, kind: str, ins, nbytes: int, consts=(), channels: int = 0, key=None) -> int:
    if key is not None and key in self._seen:  # the converter's common-subexpression pass
      return self._seen[key]
    out = self.value(nbytes)
    self.ops.append(Op(kind, tuple(ins), out, tuple(consts), channels, key=key))
    if key is not None:
      self._seen[key] = out
    return out

  def conv(self, x: int, cin: int, cout: int, k: int, hw: int) -> int:
    # int8 weights and int32 biases, both quantised per output channel; a convolution of one
    # input channel is written as a depthwise one (depth multiplier cout)
    return self.op("DEPTHWISE_CONV_2D" if cin == 1 else "CONV_2D", (x,), hw * hw * cout,
                   ((k * k * cin * cout, cout, None), (4 * cout, cout, None)), channels=cout)

  def relu(self, x: int) -> int:
    return self.op("RELU", (x,), self.sizes[x], key=("RELU", x))


def _trace(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int
           ) -> Graph:
  """``export.deploy_forward``'s operators in trace order, equal values computed once."""
  b = _Builder()
  s, c = spec.image_size, channels
  image = b.value(s * s * spec.channels)
  x = b.conv(image, spec.channels, c, 3, s)
  for stage in range(3):
    if stage:
      r = b.relu(x)
      # On an even side (image sizes are multiples of 4) TFLite's SAME pads (0, 1), not the
      # network's (1, 1), so the converter writes the padding out: int32 (4, 2) paddings.
      p = b.op("PAD", (r,), (s + 2) * (s + 2) * c, ((32, 0, "paddings"),))
      s2 = s // 2
      y = b.relu(b.conv(p, c, 2 * c, 3, s2))
      y = b.conv(y, 2 * c, 2 * c, 3, s2)
      pooled = b.op("AVERAGE_POOL_2D", (x,), s2 * s2 * c)
      sc = b.conv(pooled, c, 2 * c, 1, s2)
      s, c = s2, 2 * c
      x = b.op("ADD", (sc, y), s * s * c)
    t = s * s * c
    for i in range(cells_per_stage):
      nodes = [x]
      for node in range(1, space.NUM_NODES):
        acc = None
        for _, src, o in space.edges_into(node, ops):
          h = nodes[src]
          if o == _SKIP:
            y = h
          elif o == _POOL:
            y = b.op("AVERAGE_POOL_2D", (h,), t, key=("AVG3", h))
          else:
            y = b.conv(b.relu(h), c, c, 1 if o == _CONV1 else 3, s)
          acc = y if acc is None else b.op("ADD", (acc, y), t)
        if acc is None:  # x * 0.0 (export._cell): a MUL by an int8 scalar constant
          acc = b.op("MUL", (x,), t, ((1, 1, "zero"),), key=("ZERO", x))
        nodes.append(acc)
      x = nodes[-1]
  # The head BatchNorm's scale and shift, then ReLU. A cell whose output is zero (no edge into
  # its last node) gives the head zero variance and mean: an initialised network's scale is then
  # the same for every channel (one int8 scalar) and its shift zero, which the converter drops.
  zero_output = not space.edges_into(space.NUM_NODES - 1, ops)
  x = b.op("MUL", (x,), s * s * c, ((1 if zero_output else c, 1, None),))
  if not zero_output:
    x = b.op("ADD", (x,), s * s * c, ((c, 1, None),))
  x = b.relu(x)
  x = b.op("SUM", (x,), c, ((8, 0, "axes"),))  # mean over H, W (1 / (s * s) in the dense layer)
  n = spec.num_classes  # the dense layer, quantised per output channel as a convolution
  x = b.op("FULLY_CONNECTED", (x,), n, ((c * n, n, None), (4 * n, n, None)), channels=n)
  return Graph(b.ops, b.sizes, image, x)


def _dead_code_eliminated(g: Graph) -> list[Op]:
  needed, keep = {g.output}, []
  for op in reversed(g.ops):
    if op.out in needed:
      keep.append(op)
      needed.update(op.ins)
  return keep[::-1]


def _uses(ops: list[Op]) -> dict[int, int]:
  uses: dict[int, int] = {}
  for op in ops:
    for v in op.ins:
      uses[v] = uses.get(v, 0) + 1
  return uses


def _fold_affine(ops: list[Op], output: int) -> list[Op]:
  """A MUL or ADD by a constant (the head BatchNorm, ``x * 0``) whose input is a convolution's
  output that nothing else reads is folded into that convolution's weights and bias, which
  moves to the folded operator's place."""
  while True:
    uses, writer = _uses(ops), {op.out: op for op in ops}
    for k, op in enumerate(ops):
      p = writer.get(op.ins[0]) if op.kind in ("MUL", "ADD") and op.consts else None
      if (p is not None and p.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and not p.fused
          and uses[op.ins[0]] == 1 and op.ins[0] != output):
        ops = ([q for q in ops[:k] if q is not p] + [dataclasses.replace(p, out=op.out)]
               + ops[k + 1:])
        break
    else:
      return ops


def _fuse_relus(ops: list[Op], output: int) -> list[Op]:
  """A ReLU whose input only it reads is folded into the operator that writes the input, which
  moves to the ReLU's place (the converter rewrites the pair where the ReLU stands)."""
  uses, writer = _uses(ops), {op.out: op for op in ops}
  out: list[Op] = []
  fused_away: set[int] = set()
  for op in ops:
    p = writer.get(op.ins[0]) if op.kind == "RELU" else None
    if (p is not None and p.kind in _FUSES_RELU and not p.fused and uses[op.ins[0]] == 1
        and op.ins[0] != output):
      fused_away.add(id(p))
      out.append(dataclasses.replace(p, out=op.out, fused=True))
    else:
      out.append(op)
  return [op for op in out if id(op) not in fused_away]


@functools.lru_cache(maxsize=None)
def _graph(ops: tuple[int, ...], spec: data.DataSpec, channels: int, cells_per_stage: int
           ) -> Graph:
  g = _trace(ops, spec, channels, cells_per_stage)
  kept = _fuse_relus(_fold_affine(_dead_code_eliminated(g), g.output), g.output)
  return Graph(kept, g.sizes, g.input, g.output)


def graph(arch, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
          cells_per_stage: int = 5) -> Graph:
  """The predicted int8 ``.tflite`` graph of the C = channels, N = cells_per_stage network of
  ``arch`` on ``dataset``'s input (a name of data.DATASETS or a data.DataSpec)."""
  return _graph(cell_graph.live_ops(arch), data.as_spec(dataset), channels, cells_per_stage)


def greedy_plan(buffers: list[tuple[int, int, int]]) -> int:
  """TFLM's GreedyMemoryPlanner (``memory_planner/greedy_memory_planner.cc``): the arena bytes
  its plan needs for ``buffers`` (size in bytes, first operator, last operator), in the order
  TFLM adds them.

  As TFLM does: the buffers are taken largest first, ties in reverse order of addition (it fills
  its sort array from the end, then bubble-sorts stably by size); each goes at the lowest offset
  where it overlaps no buffer placed before it that is live at any operator it is (lifetimes are
  inclusive), scanning the placed buffers in offset order; the plan needs the largest end.
  """
  order = sorted(range(len(buffers))[::-1], key=lambda i: -buffers[i][0])
  steps = 1 + max((last for _, _, last in buffers), default=0)
  live_at: list[list[int]] = [[] for _ in range(steps)]  # placed buffers live at each operator
  offsets = [0] * len(buffers)
  end = 0
  rank: dict[int, int] = {}
  for i in order:
    size, first, last = buffers[i]
    near = {j for t in range(first, last + 1) for j in live_at[t]}
    # The placed buffers that overlap in time, in offset order (ties: placed first first, as
    # TFLM's offset-ordered list inserts after equal offsets).
    offset = 0
    for off, _, j in sorted((offsets[j], rank[j], j) for j in near):
      if off >= offset + size:
        break
      offset = max(offset, off + buffers[j][0])
    offsets[i] = offset
    rank[i] = len(rank)
    for t in range(first, last + 1):
      live_at[t].append(i)
    end = max(end, offset + size)
  return end


def lifetimes(g: Graph) -> list[tuple[int, int, int]]:
  """(bytes rounded up to 16, first operator, last operator) of every activation tensor of
  ``g`` in tensor order (the input, then each operator's output in operator order): a tensor
  lives from the operator that writes it (the input from the first) to the last that reads it
  (the output to the last operator)."""
  first = {g.input: 0}
  last = {g.input: 0}
  for i, op in enumerate(g.ops):
    for v in op.ins:
      last[v] = i
    first[op.out] = last[op.out] = i
  last[g.output] = len(g.ops) - 1
  return [(_align(g.sizes[v]), first[v], last[v]) for v in [g.input] + [op.out for op in g.ops]]


# Per tensor of the file, besides its data and quantisation arrays: its table (shape, type,
# buffer index, name string, quantisation table and vector headers) and its buffer's entry;
# and the model's fixed tables (operator codes, subgraph, metadata). Fitted by least squares to
# the 21 converted files of benchmarks/tflite_check.py's cells (the file minus its constant data
# and quantisation arrays, which this module counts exactly): residual at most 0.8 KB per file.
# The names are the converter's (their length varies with the trace), hence a fit.
FLATBUFFER_TENSOR_BYTES = 159
FLATBUFFER_FIXED_BYTES = 530


def constants(g: Graph) -> list[tuple[int, int]]:
  """(bytes, quantised channels) of each constant tensor of the file (equal ones stored once)."""
  out: dict = {}
  for k, op in enumerate(g.ops):
    for j, (nbytes, channels, key) in enumerate(op.consts):
      out[key if key is not None else (k, j)] = (nbytes, channels)
  return list(out.values())


def tensor_count(g: Graph) -> int:
  """Tensors of the file: the constants (equal ones once), the input and each operator's output."""
  return len(constants(g)) + 1 + len(g.ops)


def flatbuffer_bytes(g: Graph) -> dict[str, int]:
  """The ``.tflite`` file of ``g``: ``constant_data`` (weight, bias and parameter buffers),
  ``quantization_params`` (a float32 scale and an int64 zero point per quantised channel of each
  constant, and per activation tensor), ``tensors`` and ``total`` bytes."""
  consts = constants(g)
  n_tensors = tensor_count(g)
  data_bytes = sum(b for b, _ in consts)
  quant = 12 * (sum(ch for _, ch in consts) + 1 + len(g.ops))
  total = data_bytes + quant + FLATBUFFER_TENSOR_BYTES * n_tensors + FLATBUFFER_FIXED_BYTES
  return {"constant_data": data_bytes, "quantization_params": quant, "tensors": n_tensors,
          "total": total}


@dataclasses.dataclass(frozen=True)
class Build:
  """Sizes (bytes) of TFLM's structs and kernel data in one build, and their alignment.

  ``host``: the ``tflite-micro`` Python wheel (x86-64, built with TFLM's weight compression
  support, which widens OpDataConv / OpDataFullyConnected), the build whose arena
  ``tflite.arena_bytes`` records; every size was read from the headers and checked against its
  ``print_allocations`` byte for byte. ``cortex_m``: a 32-bit Cortex-M build with
  arm-none-eabi-gcc's defaults (short enums), no compression, the plain MicroAllocator: sizes
  from compiling TFLM's headers for cortex-m4, not measured on a board.
  """

  pointer: int
  eval_tensor: int
  tensor: int
  node_and_registration: int
  affine_quantization: int
  allocators: tuple[int, ...]  # buffer allocator, planner, micro allocator, builtin-data
  subgraph_allocations: int
  op_data: dict  # kind -> bytes of the kernel's OpData (16-aligned persistent buffer)
  params: dict  # kind -> (bytes, alignment) of the parsed builtin options


_OP_DATA = {"ADD": 60, "AVERAGE_POOL_2D": 32, "SUM": 44, "RELU": 28, "PAD": 56, "MUL": 36}
_SHARED_PARAMS = {"CONV_2D": (28, 4), "DEPTHWISE_CONV_2D": (28, 4), "AVERAGE_POOL_2D": (40, 4),
                "SUM": (1, 1)}
BUILDS = {
    "host": Build(8, 24, 64, 64, 24, (104, 72, 272, 16), 24,
                  {**_OP_DATA, "CONV_2D": 80, "DEPTHWISE_CONV_2D": 80, "FULLY_CONNECTED": 72},
                  {**_SHARED_PARAMS, "ADD": (8, 4), "FULLY_CONNECTED": (32, 8), "MUL": (4, 4)}),
    "cortex_m": Build(4, 12, 32, 32, 12, (36, 44, 36, 8), 8,
                      {**_OP_DATA, "CONV_2D": 56, "DEPTHWISE_CONV_2D": 56, "FULLY_CONNECTED": 48},
                      {**_SHARED_PARAMS, "ADD": (2, 1), "FULLY_CONNECTED": (5, 1), "MUL": (1, 1)}),
}


def _scratch(g: Graph) -> list[tuple[int, int]]:
  """(bytes, operator) of the kernels' scratch buffers: the int8 SUM's reference kernel asks for
  an int32 accumulator per output element, and its input's rank and axes as int32 arrays."""
  out = []
  for i, op in enumerate(g.ops):
    if op.kind == "SUM":
      out += [(4 * g.sizes[op.out], i), (4 * 4, i), (4 * 2, i)]
  return out


def tail_bytes(g: Graph, build: Build) -> int:
  """TFLM's persistent allocations for ``g``, replayed in TFLM's order (each allocation taken
  from the arena's end and aligned down: the allocators, the eval tensors of every tensor,
  constants included, a NodeAndRegistration per operator, each operator's builtin options, each
  kernel's OpData at Init, at Prepare two int32 arrays of the output channels (multiplier, shift)
  per convolution and per-channel dense layer, the scratch-buffer handles, and the graph input's
  and output's pointer arrays, TfLiteTensors and zero-point arrays)."""
  tail = 0

  def alloc(size: int, align: int) -> None:
    nonlocal tail
    tail = -(-(tail + size) // align) * align

  p = build.pointer
  for size in build.allocators:
    alloc(size, p)
  alloc(build.subgraph_allocations, p)
  alloc(build.eval_tensor * tensor_count(g), p)
  alloc(build.node_and_registration * len(g.ops), p)
  for op in g.ops:
    if op.kind in build.params:
      alloc(*build.params[op.kind])
  for op in g.ops:
    alloc(build.op_data[op.kind], ALIGN)
  for op in g.ops:
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and op.channels > 1:
      alloc(4 * op.channels, ALIGN)
      alloc(4 * op.channels, ALIGN)
  n_scratch = len(_scratch(g))
  if n_scratch:
    alloc(p * n_scratch, p)
  for _ in ("input", "output"):  # one tensor each, int8, one scale and zero point
    alloc(p, ALIGN)
    alloc(build.tensor, p)
    alloc(build.affine_quantization, p)
    alloc(4 * 2, 4)
  return tail


def arenas(g: Graph, builds=tuple(BUILDS)) -> dict:
  """TFLM's tensor arena for ``g`` in each of ``builds`` (names of ``BUILDS`` or ``Build``s), as
  {build: {"head", "tail", "total"}} bytes: ``head`` the greedy plan of the activations and
  scratch buffers (the same in every build with TFLM's reference kernels, so planned once),
  ``tail`` the persistent allocations with the build's struct sizes, ``total`` what
  ``arena_size`` must give."""
  head = greedy_plan(lifetimes(g) + [(_align(n), i, i) for n, i in _scratch(g)])
  out = {}
  for build in builds:
    tail = tail_bytes(g, BUILDS[build] if isinstance(build, str) else build)
    out[build] = {"head": head, "tail": tail, "total": head + tail}
  return out


def arena(g: Graph, build: "str | Build" = "host") -> dict[str, int]:
  """TFLM's tensor arena for ``g`` in one build: ``arenas(g, (build,))[build]``."""
  return arenas(g, (build,))[build]
