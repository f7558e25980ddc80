"""Hardware cost of the deployed NAS-Bench-201 network: FLOPs, params, flash and SRAM.

FLOPs and params are read off the layer shapes of ``models.Network`` (C=16, N=5 by default):
``jax.eval_shape`` gives every parameter's shape and every conv/dense layer's output shape, with
no compute. Conventions match the benchmark's counts: FLOPs (multiply-accumulates) of conv and
dense layers only, ``out_h * out_w * k_h * k_w * c_in * c_out`` per conv and
``c_in * c_out + c_out`` per dense layer, per image; params count every parameter, BatchNorm
included. Both are linear in the mask, so they are stored as ``base + sum(mask * per_op)``
and evaluate as pure functions inside jit, for single cells and supernets alike (a supernet's
cost is that of running every active operator).

Memory of an int8 (or float32) deployment, the method:
- flash: every conv/dense weight at ``weight_bytes``; BatchNorm folded into the preceding conv;
  per output channel of every conv and dense layer a 4-byte bias, and in int8 a 4-byte
  requantisation multiplier; the head BatchNorm (not preceded by a conv) as a 4-byte scale and
  shift per channel.
- peak SRAM: activations only (weights stay in flash), from a liveness walk over the network in
  execution order: a tensor lives from the op that writes it to the last op that reads it; a
  node of a cell is an accumulator that lives from its first to its last use; a conv operator
  needs its ReLU output and its conv output as temporaries, a pooling operator one output
  buffer, a skip connection adds in place, ``none`` costs nothing. The peak is the largest sum of
  live tensors at any step. Runtime scratch buffers (im2col) and the interpreter's arena overhead
  are not included.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import models, space

INPUT_SIZE = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}
_CONV1, _CONV3 = space.OP_INDEX["nor_conv_1x1"], space.OP_INDEX["nor_conv_3x3"]
_POOL, _SKIP, _NONE = (space.OP_INDEX[n] for n in ("avg_pool_3x3", "skip_connect", "none"))


def _check_dataset(dataset: str) -> None:
  if dataset not in INPUT_SIZE:
    raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(INPUT_SIZE)}")


@dataclasses.dataclass(frozen=True)
class CostTable:
  """Linear cost model: ``cost(mask) = base + sum(mask * per_op)``; masks (6, 5).

  flops_* are per image in M (multiply-accumulates, 1e6); params_* in M (1e6).
  """

  base_flops_M: float
  op_flops_M: np.ndarray  # (6, 5)
  base_params_M: float
  op_params_M: np.ndarray  # (6, 5)

  def flops_M(self, mask) -> jax.Array:
    """FLOPs (M) of the network running every active operator of ``mask`` (6, 5)."""
    return self.base_flops_M + jnp.sum(jnp.asarray(mask) * self.op_flops_M)

  def params_M(self, mask) -> jax.Array:
    """Params (M) of the network holding every active operator of ``mask`` (6, 5)."""
    return self.base_params_M + jnp.sum(jnp.asarray(mask) * self.op_params_M)


def _edge_op_of(path: tuple[str, ...]):
  """(edge, op) index of a parameter path inside a cell, or None for shared layers."""
  for i, part in enumerate(path):
    if part.startswith("edge") and part[4:].isdigit() and i + 1 < len(path):
      return int(part[4:]), space.OP_INDEX[path[i + 1]]
  return None


@functools.lru_cache(maxsize=None)
def cost_table(dataset: str = "cifar10", channels: int = 16, cells_per_stage: int = 5) -> CostTable:
  """The linear FLOPs/params model of ``models.Network`` for a dataset's input and classes."""
  _check_dataset(dataset)
  s = INPUT_SIZE[dataset]
  net = models.Network(channels, cells_per_stage, NUM_CLASSES[dataset])
  x = jax.ShapeDtypeStruct((1, s, s, 3), jnp.float32)
  mask = jax.ShapeDtypeStruct((space.NUM_EDGES, space.NUM_OPS), jnp.float32)

  def shapes(x, mask):
    variables = net.init(jax.random.key(0), x, mask)
    _, state = net.apply(variables, x, mask, mutable=["intermediates", "batch_stats"],
                         capture_intermediates=lambda m, _: isinstance(m, (nn.Conv, nn.Dense)))
    return variables["params"], state["intermediates"]

  params, inter = jax.eval_shape(shapes, x, mask)
  inter_flat = {tuple(k.key for k in path[:-1]): leaf
                for path, leaf in jax.tree_util.tree_flatten_with_path(inter)[0]}
  base_f = base_p = 0.0
  op_f = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  op_p = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = tuple(k.key for k in path)
    n_params = float(np.prod(leaf.shape))
    flops = 0.0
    if names[-1] == "kernel":
      out = inter_flat[names[:-1] + ("__call__",)].shape  # (1, h, w, c_out) or (1, c_out)
      flops = n_params * (float(np.prod(out[1:-1])) if len(out) == 4 else 1.0)
    elif names[-1] == "bias" and leaf.ndim == 1 and names[-2] == "classifier":
      flops = n_params  # the benchmark counts the dense bias add
    where = _edge_op_of(names)
    if where is None:
      base_f += flops
      base_p += n_params
    else:
      op_f[where] += flops
      op_p[where] += n_params
  return CostTable(base_f / 1e6, op_f / 1e6, base_p / 1e6, op_p / 1e6)


def flops_M(arch, dataset: str = "cifar10") -> float:
  """FLOPs (M per image) of the C=16, N=5 network of a cell (Arch, string, ops or mask)."""
  t = cost_table(dataset)  # numpy, not jnp: no dispatch cost when describing many cells
  return float(t.base_flops_M + np.sum(_as_mask(arch) * t.op_flops_M))


def params_M(arch, dataset: str = "cifar10") -> float:
  """Parameters (M) of the C=16, N=5 network of a cell, BatchNorm included."""
  t = cost_table(dataset)
  return float(t.base_params_M + np.sum(_as_mask(arch) * t.op_params_M))


def _as_mask(arch) -> np.ndarray:
  if isinstance(arch, (np.ndarray, jax.Array)) and np.shape(arch) == (space.NUM_EDGES, space.NUM_OPS):
    return space.validate_mask(arch)
  return space.to_arch(arch).to_mask()


# ----------------------------------------------------------------------------- memory

BYTES = {"int8": 1, "float32": 4}


def _flash_bytes(ops: tuple[int, ...], dataset: str, dtype: str, channels: int,
                 cells_per_stage: int) -> int:
  wb = BYTES[dtype]
  per_channel = 4 + (4 if dtype == "int8" else 0)  # bias (+ requantisation multiplier)
  c, total = channels, 0
  total += 3 * 3 * 3 * c * wb + c * per_channel  # stem conv with its BN folded
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
  n_cls = NUM_CLASSES[dataset]
  total += c * n_cls * wb + n_cls * per_channel
  return total


def _cell_peak(ops: tuple[int, ...], t: int) -> int:
  """Peak live bytes inside one cell whose feature maps take ``t`` bytes each."""
  last_use = {n: -1 for n in range(space.NUM_NODES - 1)}  # last non-none consumer edge
  for e, (_, src) in enumerate(space.EDGES):
    if ops[e] != _NONE:
      last_use[src] = e
  live = {0: t}  # node 0: the cell input, written by the previous layer
  if last_use[0] < 0:
    live.pop(0)
  peak = t
  for node in range(1, space.NUM_NODES):
    live[node] = t  # this node's accumulator
    for e, (dst, src) in enumerate(space.EDGES):
      if dst != node:
        continue
      op = ops[e]
      temps = 2 * t if op in (_CONV1, _CONV3) else (t if op == _POOL else 0)
      peak = max(peak, sum(live.values()) + temps)
      if last_use[src] == e:
        live.pop(src)
    if node < space.NUM_NODES - 1 and last_use[node] < 0:
      live.pop(node)  # computed but never read
    peak = max(peak, sum(live.values()))
  return peak


def _peak_sram_bytes(ops: tuple[int, ...], dataset: str, dtype: str, channels: int) -> int:
  ab = BYTES[dtype]
  h, c = INPUT_SIZE[dataset], channels
  peak = (h * h * 3 + h * h * c) * ab  # stem: input image and its output
  for stage in range(3):
    if stage:
      t_in = h * h * c * ab
      h, c = h // 2, 2 * c
      t_out = h * h * c * ab
      # Residual reduction; its input lives until the shortcut has read it:
      # conv_a (ReLU temp + out), conv_b (ReLU temp + out, conv_a out still live),
      # shortcut (pooled input + 1x1 conv out, conv_b out still live).
      peak = max(peak, 2 * t_in + t_out, t_in + 3 * t_out, t_in + 2 * t_out + t_in // 4)
    peak = max(peak, _cell_peak(ops, h * h * c * ab))
  return peak


@functools.lru_cache(maxsize=None)
def _memory(ops: tuple[int, ...], dataset: str, channels: int, cells_per_stage: int):
  out = {}
  for dtype in BYTES:
    out[f"flash_bytes_{dtype}"] = _flash_bytes(ops, dataset, dtype, channels, cells_per_stage)
    out[f"peak_sram_bytes_{dtype}"] = _peak_sram_bytes(ops, dataset, dtype, channels)
  return out


def deployment_memory(arch, dataset: str = "cifar10", channels: int = 16,
                      cells_per_stage: int = 5) -> dict[str, int]:
  """Flash and peak SRAM (bytes) of the deployed network, int8 and float32.

  Returns ``flash_bytes_int8``, ``peak_sram_bytes_int8``, ``flash_bytes_float32``,
  ``peak_sram_bytes_float32`` (method in the module docstring).
  """
  _check_dataset(dataset)
  return dict(_memory(space.to_arch(arch).ops, dataset, channels, cells_per_stage))
