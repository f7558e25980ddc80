"""Empirical neural tangent kernel and its condition numbers (TE-NAS / MONAS indicator K).

Theta = J J^T on one minibatch of n images, where row i of J is the gradient, with respect to the
selected parameters, of the sum over classes of the logits of image i. Training-mode BatchNorm
couples the images of a batch, so J is the Jacobian of the whole batched forward pass.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp


def empirical_ntk(apply_fn: Callable, params, x: jax.Array,
                  param_filter: Optional[Callable[[tuple, jax.Array], bool]] = None) -> jax.Array:
  """Empirical NTK of ``sum_k apply_fn(params, x)[:, k]`` over a batch.

  Args:
    apply_fn: ``(params, x) -> logits (n, k)``; the batch is one call (BatchNorm may couple it).
    params: a pytree of arrays.
    x: inputs, leading axis n.
    param_filter: ``(path, leaf) -> bool`` picks the parameters differentiated (default: all).
  Returns:
    Theta, shape (n, n), float32 (the dtype of the logits).
  """
  if param_filter is None:
    selected, rest = params, None
    merge = lambda s, r: s
  else:
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keep = [bool(param_filter(p, l)) for p, l in paths_leaves]
    leaves = [l for _, l in paths_leaves]
    selected = [l for l, k in zip(leaves, keep) if k]
    rest = [l for l, k in zip(leaves, keep) if not k]

    def merge(s, r):
      s, r = iter(s), iter(r)
      return jax.tree_util.tree_unflatten(treedef, [next(s) if k else next(r) for k in keep])

  def f(sel):
    return jnp.sum(apply_fn(merge(sel, rest), x), axis=-1)  # (n,)

  jac = jax.jacrev(f)(selected)  # pytree of (n, *leaf_shape)
  rows = jnp.concatenate([j.reshape(j.shape[0], -1) for j in jax.tree_util.tree_leaves(jac)], 1)
  return rows @ rows.T
