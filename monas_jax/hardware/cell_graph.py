"""Cell structure that compilers exploit: which operators run, and whether the output is zero.

Written once over an array module ``xp`` (numpy for float64 evaluation and fits, jax.numpy
inside jit); masks are (..., 6, 5) 0/1 over (edge, operator). Used by the latency model
(``latency.py``), the latency fits (``calibration.py``) and the memory models (``memory.py``,
``tflm.py``);
it depends on the search space only, so none of those modules needs another for it.

A node is *identically zero* when every active operator into it is ``none`` or reads an
identically-zero node (skip and pooling map zero to zero; ReLU-conv-BN does too for the untrained
BatchNorm statistics that benchmark networks are exported with).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from monas_jax import space

_NONE = space.OP_INDEX["none"]


def _nonnone(mask, xp):
  """(..., 6) bool: the edge carries an active operator other than ``none``."""
  return xp.any(xp.asarray(mask)[..., 1:] > 0, axis=-1)


def live_mask(mask, xp=jnp):
  """Active operators whose output reaches the cell output. (..., 6, 5) -> (..., 6, 5).

  An operator other than ``none`` on edge ``j <- i`` is live when node j reaches node 3 through
  edges that carry an active operator other than ``none``; dead ones are what dead-code
  elimination removes. ``none`` is never live (it does no work). The result has the mask's
  dtype; ``xp`` is the array module (``numpy`` or ``jax.numpy``, the default).
  """
  m = xp.asarray(mask)
  a = _nonnone(m, xp)
  # reach[j]: node j reaches node 3 through edges carrying a non-none operator.
  reach = {3: xp.ones(a.shape[:-1], bool)}
  for node in (2, 1):
    reach[node] = xp.zeros(a.shape[:-1], bool)
    for e, (dst, src) in enumerate(space.EDGES):
      if src == node:
        reach[node] = reach[node] | (a[..., e] & reach[dst])
  dst_reaches = xp.stack([reach[dst] for dst, _ in space.EDGES], axis=-1)
  not_none = (xp.arange(space.NUM_OPS) != _NONE).astype(m.dtype)  # `none` never runs
  return m * dst_reaches[..., None].astype(m.dtype) * not_none


def output_is_zero(mask, xp=jnp):
  """Whether the cell output (node 3) is identically zero. (..., 6, 5) -> (...,) bool.

  ``xp`` is the array module (``numpy`` or ``jax.numpy``, the default).
  """
  a = _nonnone(mask, xp)
  nonzero = {0: xp.ones(a.shape[:-1], bool)}
  for node in (1, 2, 3):
    nonzero[node] = xp.zeros(a.shape[:-1], bool)
    for e, (dst, src) in enumerate(space.EDGES):
      if dst == node:
        nonzero[node] = nonzero[node] | (a[..., e] & nonzero[src])
  return ~nonzero[3]


def live_ops(arch) -> tuple[int, ...]:
  """The cell's 6 operator indices with every dead one (its output cannot reach the cell output)
  made ``none``: compilers remove them (checked against the exported ONNX and TFLite graphs,
  which do not hold them), so they take neither flash nor SRAM."""
  a = space.to_arch(arch)
  live = live_mask(a.to_mask(), np)
  return tuple(o if live[e, o] > 0 else _NONE for e, o in enumerate(a.ops))
