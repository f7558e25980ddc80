"""Flax Linen modules of the NAS-Bench-201 network with masked edges.

Layout (NHWC throughout): stem Conv3x3(3->C)+BN; N cells at C; residual reduction to 2C
(stride 2); N cells at 2C; reduction to 4C; N cells at 4C; BN + ReLU; global average pool;
Dense to the class count. Every cell shares one ``(6, 5)`` operator mask, passed at call time
as an array: the mask is data, so one compiled apply serves every mask. On an edge with k
active operators the edge output is the plain mean of those k operator outputs.

The standalone network of one cell (``ops_per_edge`` given) builds only that cell's operators,
under the same parameter names, so the supernet's parameters restricted to its tree are its
parameters.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPS = 1e-5

_ALL_OPS = tuple(range(space.NUM_OPS))
_CONV_KERNEL = {space.OP_INDEX["nor_conv_1x1"]: 1, space.OP_INDEX["nor_conv_3x3"]: 3}


def batch_norm(train: bool, name: Optional[str] = None) -> nn.BatchNorm:
  """The network's BatchNorm (PyTorch's momentum and epsilon); batch statistics when ``train``,
  running averages otherwise."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPS,
                      name=name)


def conv(features: int, k: int, stride: int = 1, name: Optional[str] = None) -> nn.Conv:
  """k x k convolution to ``features`` channels, no bias, PyTorch's padding k // 2. NHWC."""
  p = k // 2  # PyTorch-style symmetric padding (Flax 'SAME' pads stride-2 asymmetrically)
  return nn.Conv(features, (k, k), strides=(stride, stride), padding=((p, p), (p, p)),
                 use_bias=False, name=name)


@functools.lru_cache(maxsize=None)
def _window_counts(h: int, w: int) -> np.ndarray:
  """Pixels inside the image of each 3x3 window (padding 1) at every position: (1, h, w, 1)."""
  ones = np.pad(np.ones((h, w)), 1)
  counts = sum(ones[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
  counts = counts[None, :, :, None]
  counts.flags.writeable = False  # shared by every call through the cache
  return counts


def avg_pool_3x3(x: jax.Array) -> jax.Array:
  """3x3 average pool, stride 1, padding 1, padding not counted. (n, h, w, c) -> same.

  The window sum over the number of pixels inside each window, the same arithmetic as Flax's
  ``avg_pool(..., count_include_pad=False)``, but with the counts computed here once per shape
  as a constant: Flax pools an array of ones for them, which XLA constant-folds on every
  compile, slowly on CPU (benchmarks/pool_compile.py). The counts are small integers, exact in
  any float type, so the quotient is bit for bit Flax's; their dtype is the one of Flax's
  ``jnp.ones`` (float32, float64 under ``jax_enable_x64``) so that the result dtype is too.
  """
  s = nn.pool(x, 0.0, jax.lax.add, (3, 3), (1, 1), ((1, 1), (1, 1)))
  counts = _window_counts(x.shape[1], x.shape[2])
  return s / counts.astype(jax.dtypes.canonicalize_dtype(np.float64))


class ReLUConvBN(nn.Module):
  """ReLU -> Conv(k, stride, pad k//2, no bias) -> BatchNorm. Sows the ReLU's sign pattern."""

  features: int
  kernel: int
  stride: int = 1

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = nn.relu(x)
    self.sow("relu", "pre", x)  # for activation patterns (linear-region count)
    self.sow("meco", "relu_out", x)  # MeCo's per-module maps (zero_cost.meco_modules_fn)
    x = conv(self.features, self.kernel, self.stride, name="conv")(x)
    self.sow("meco", "conv_out", x)
    return batch_norm(train, name="bn")(x)


class Edge(nn.Module):
  """One edge: the (masked) mean of the operators listed in ``ops`` (operator indices)."""

  channels: int
  ops: Sequence[int] = _ALL_OPS

  @nn.compact
  def __call__(self, x, mask_e=None, train: bool = True):
    """x: (n, h, w, c); mask_e: (5,) 0/1 over all operators, or None for a standalone edge."""
    outs = {}
    for o in self.ops:
      name = space.OPS[o]
      if name == "none":
        continue  # contributes zeros; it still counts in the mean's denominator
      if name == "skip_connect":
        outs[o] = x
        self.sow("meco", name, x)
      elif name == "avg_pool_3x3":
        outs[o] = avg_pool_3x3(x)
        self.sow("meco", name, outs[o])
      else:
        outs[o] = ReLUConvBN(self.channels, _CONV_KERNEL[o], name=name)(x, train)
    if mask_e is None:
      if len(self.ops) != 1:
        raise ValueError("an edge with several operators needs a mask")
      return next(iter(outs.values())) if outs else jnp.zeros_like(x)
    mask_e = mask_e.astype(x.dtype)
    weights = mask_e / jnp.maximum(jnp.sum(mask_e), 1.0)
    y = jnp.zeros_like(x)
    for o, out in outs.items():
      # where(): a pruned operator contributes exactly nothing, NaN or inf included.
      y = y + jnp.where(mask_e[o] > 0, weights[o] * out, 0.0)
    return y


class Cell(nn.Module):
  """NAS-Bench-201 cell: node j = sum of its incoming edges; returns node 3."""

  channels: int
  ops_per_edge: Optional[Sequence[int]] = None  # None: supernet cell (all ops, masked)

  @nn.compact
  def __call__(self, x, mask=None, train: bool = True):
    """x: (n, h, w, C); mask: (6, 5) or None (standalone). Returns (n, h, w, C)."""
    nodes = [x]
    for node in range(1, space.NUM_NODES):
      acc = None
      for e, (dst, src) in enumerate(space.EDGES):
        if dst != node:
          continue
        ops = _ALL_OPS if self.ops_per_edge is None else (self.ops_per_edge[e],)
        y = Edge(self.channels, ops, name=f"edge{e}")(
            nodes[src], None if mask is None else mask[e], train)
        acc = y if acc is None else acc + y
      nodes.append(acc)
    return nodes[-1]


class ResidualReduction(nn.Module):
  """ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus AvgPool(2, s2) -> Conv1x1 shortcut."""

  features: int

  @nn.compact
  def __call__(self, x, train: bool = True):
    y = ReLUConvBN(self.features, 3, 2, name="conv_a")(x, train)
    y = ReLUConvBN(self.features, 3, 1, name="conv_b")(y, train)
    s = nn.avg_pool(x, (2, 2), strides=(2, 2))
    self.sow("meco", "shortcut_pool", s)
    s = nn.Conv(self.features, (1, 1), use_bias=False, name="shortcut")(s)
    self.sow("meco", "shortcut_out", s)
    return s + y


class Network(nn.Module):
  """The NAS-Bench-201 macro network (supernet if ``ops_per_edge`` is None).

  Attributes:
    channels: C, the width of the first stage (16 in the benchmark).
    cells_per_stage: N (5 in the benchmark).
    num_classes: classifier outputs.
    ops_per_edge: None for the masked supernet, or 6 operator indices for one cell.
  """

  channels: int = 16
  cells_per_stage: int = 5
  num_classes: int = 10
  ops_per_edge: Optional[Sequence[int]] = None

  @nn.compact
  def __call__(self, x, mask=None, train: bool = True, block_input=None):
    """x: (n, h, w, 3) normalised images; mask: (6, 5). Returns logits (n, num_classes).

    The stem output and every block output (3N cells, 2 reductions) are sown in the collection
    ``features`` (tuple ``maps``, in order) when it is mutable. ``block_input(x, l)``, if given,
    transforms the input of block l (0-based, reductions and cells in order) before the block
    runs: the zero-cost proxies use it to take each block's vector-Jacobian product in one
    backward pass (AZ-NAS) and to keep synflow's activations in float32 range.
    """
    if self.ops_per_edge is None and mask is None:
      raise ValueError("the supernet needs a (6, 5) mask")
    c = self.channels
    x = conv(c, 3, name="stem_conv")(x)
    x = batch_norm(train, name="stem_bn")(x)
    self.sow("features", "maps", x)
    block = 0

    def enter(x, block):
      return x if block_input is None else block_input(x, block)

    for stage in range(3):
      if stage > 0:
        c *= 2
        x = ResidualReduction(c, name=f"reduction{stage}")(enter(x, block), train)
        self.sow("features", "maps", x)
        block += 1
      for i in range(self.cells_per_stage):
        x = Cell(c, self.ops_per_edge, name=f"stage{stage}_cell{i}")(enter(x, block), mask, train)
        self.sow("features", "maps", x)
        block += 1
    return Head(self.num_classes, name="head")(x, train)


class Head(nn.Module):
  """BN + ReLU (sign pattern sown), global average pool, Dense. (n, h, w, c) -> (n, classes)."""

  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = nn.relu(batch_norm(train, name="bn")(x))
    self.sow("relu", "post", x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(x)


class SingleCellNetwork(nn.Module):
  """Width-C single cell without stem, then BN + ReLU, global pool, Dense (linear regions).

  Input (n, h, w, C) with C = ``channels`` (1 in the reference: one colour channel).
  """

  channels: int = 1
  num_classes: int = 10
  ops_per_edge: Optional[Sequence[int]] = None

  @nn.compact
  def __call__(self, x, mask=None, train: bool = True):
    x = Cell(self.channels, self.ops_per_edge, name="cell")(x, mask, train)
    return Head(self.num_classes, name="head")(x, train)


def initialize(key: jax.Array, params, scheme: str = "kaiming", mode: str = "fan_out"):
  """Draws fresh parameters with the tree structure of ``params`` (pure in ``key``).

  Args:
    key: PRNG key.
    params: template pytree (Flax ``params`` collection); only shapes and names are used.
    scheme: 'kaiming' (normal, std sqrt(2 / fan), TE-NAS's intent) or 'torch_default' (PyTorch's
      default: weights and dense biases uniform in +-1/sqrt(fan_in), what TE-NAS's released
      code actually runs). BatchNorm scales are 1 and shifts 0 in both.
    mode: 'fan_out' or 'fan_in' for 'kaiming'.

  Leaf i (in tree-flattening order) is drawn from ``jax.random.split(key, num_leaves)[i]``.
  """
  if scheme not in ("kaiming", "torch_default"):
    raise ValueError(f"init scheme must be 'kaiming' or 'torch_default', got {scheme!r}")
  if mode not in ("fan_in", "fan_out"):
    raise ValueError(f"init mode must be 'fan_in' or 'fan_out', got {mode!r}")
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(key, len(flat))
  dense_fan_in = {}
  for path, leaf in flat:
    if path[-1].key == "kernel" and leaf.ndim == 2:
      dense_fan_in[tuple(k.key for k in path[:-1])] = leaf.shape[0]
  # Each leaf's draw: ("normal", std), ("uniform", bound), "ones" or "zeros".
  draws = []
  for path, leaf in flat:
    name = path[-1].key
    parent = tuple(p.key for p in path[:-1])
    if name == "kernel":
      receptive = int(np.prod(leaf.shape[:-2]))  # conv HWIO or dense (in, out)
      fan_in, fan_out = receptive * leaf.shape[-2], receptive * leaf.shape[-1]
      if scheme == "kaiming":
        draws.append(("normal", np.sqrt(2.0 / (fan_out if mode == "fan_out" else fan_in))))
      else:
        draws.append(("uniform", 1.0 / np.sqrt(fan_in)))
    elif name == "scale":
      draws.append(("ones", None))
    elif name == "bias" and parent in dense_fan_in and scheme != "kaiming":
      draws.append(("uniform", 1.0 / np.sqrt(dense_fan_in[parent])))
    else:
      draws.append(("zeros", None))
  # Leaves of one shape and kind are drawn by one vmapped call over their keys: the same values
  # as one call per leaf (the bits depend only on each leaf's key), and a few dozen random
  # computations for XLA to compile instead of hundreds (the C=16, N=5 supernet has 561
  # leaves; compiling one draw per leaf took about 16 s on this project's CPU).
  groups: dict = {}
  for i, ((_, leaf), (kind, _)) in enumerate(zip(flat, draws)):
    groups.setdefault((kind, leaf.shape, jnp.dtype(leaf.dtype)), []).append(i)
  out = [None] * len(flat)
  for (kind, shape, dtype), idx in groups.items():
    if kind in ("ones", "zeros"):
      for i in idx:
        out[i] = (jnp.ones if kind == "ones" else jnp.zeros)(shape, dtype)
      continue
    ks, c = keys[np.asarray(idx)], jnp.asarray([draws[i][1] for i in idx], dtype)
    if kind == "normal":
      vals = jax.vmap(lambda k, std: std * jax.random.normal(k, shape, dtype))(ks, c)
    else:
      vals = jax.vmap(lambda k, b: jax.random.uniform(k, shape, dtype, -b, b))(ks, c)
    for j, i in enumerate(idx):
      out[i] = vals[j]
  return jax.tree_util.tree_unflatten(treedef, out)
