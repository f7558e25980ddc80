"""Hardware cost of the deployed NAS-Bench-201 network: FLOPs, params, flash and SRAM.

FLOPs and params are read off the layer shapes of ``models.Network`` (C=16, N=5 by default):
``jax.eval_shape`` gives every parameter's shape and every conv/dense layer's output shape, with
no compute. Conventions match the benchmark's counts: FLOPs (multiply-accumulates) of conv and
dense layers only, ``out_h * out_w * k_h * k_w * c_in * c_out`` per conv and
``c_in * c_out + c_out`` per dense layer, per image; params count every parameter, BatchNorm
included. Both are linear in the mask, so they are stored as ``base + sum(mask * per_op)``
and evaluate as pure functions inside jit, for single cells and supernets alike (a supernet's
cost is that of running every active operator).

Memory of the deployment (flash and peak SRAM): ``monas_jax.hardware.memory``.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import data, models, space


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
def cost_table(dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
               cells_per_stage: int = 5) -> CostTable:
  """The linear FLOPs/params model of ``models.Network`` (C = channels, N = cells_per_stage) for
  a dataset's input (side, channels) and classes; ``dataset`` is one of data.DATASETS or a
  data.DataSpec."""
  spec = data.as_spec(dataset)
  s = spec.image_size
  net = models.Network(channels, cells_per_stage, spec.num_classes)
  x = jax.ShapeDtypeStruct((1, s, s, spec.channels), jnp.float32)
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


def flops_M(arch, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
            cells_per_stage: int = 5) -> float:
  """FLOPs (M per image) of the C=channels, N=cells_per_stage network of a cell (Arch, string,
  ops or mask) on ``dataset``'s input (a name of data.DATASETS or a data.DataSpec)."""
  # numpy, not jnp: no dispatch cost when describing many cells
  t = cost_table(dataset, channels, cells_per_stage)
  return float(t.base_flops_M + np.sum(_as_mask(arch) * t.op_flops_M))


def params_M(arch, dataset: "str | data.DataSpec" = "cifar10", channels: int = 16,
             cells_per_stage: int = 5) -> float:
  """Parameters (M) of the C=channels, N=cells_per_stage network of a cell, BatchNorm
  included."""
  t = cost_table(dataset, channels, cells_per_stage)
  return float(t.base_params_M + np.sum(_as_mask(arch) * t.op_params_M))


def _as_mask(arch) -> np.ndarray:
  if isinstance(arch, (np.ndarray, jax.Array)) and np.shape(arch) == (space.NUM_EDGES, space.NUM_OPS):
    return space.validate_mask(arch)
  return space.to_arch(arch).to_mask()


# ----------------------------------------------------------------------------- memory
# The memory model is deployment cost: it lives in monas_jax/hardware/memory.py. Re-exported so
# that ``cost.deployment_memory`` keeps working.
from monas_jax.hardware.memory import BYTES, deployment_memory  # noqa: E402,F401
