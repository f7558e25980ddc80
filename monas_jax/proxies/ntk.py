"""Empirical neural tangent kernel and its condition numbers (TE-NAS / MONAS indicator K).

Theta = J J^T on one minibatch of n images, where row i of J is the gradient, with respect to the
selected parameters, of the sum over classes of the logits of image i. Training-mode BatchNorm
couples the images of a batch, so J is the Jacobian of the whole batched forward pass.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from monas_jax import models


def empirical_ntk(apply_fn: Callable, params, x: jax.Array,
                  param_filter: Optional[Callable[[tuple, jax.Array], bool]] = None,
                  dtype: Optional[str] = None) -> jax.Array:
  """Empirical NTK of ``sum_k apply_fn(params, x)[:, k]`` over a batch.

  Args:
    apply_fn: ``(params, x) -> logits (n, k)``; the batch is one call (BatchNorm may couple it).
    params: a pytree of arrays.
    x: inputs, leading axis n.
    param_filter: ``(path, leaf) -> bool`` picks the parameters differentiated (default: all).
    dtype: precision of the product J J^T (default: J's dtype). 'float64' accumulates the
      kernel in float64 from J (needs JAX_ENABLE_X64).
  Returns:
    Theta, shape (n, n), in ``dtype`` (default the dtype of the logits).
  """
  if dtype is not None:
    _check_dtype(dtype)  # before any compute
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
  if dtype is not None:
    rows = rows.astype(dtype)
  return jnp.dot(rows, rows.T, precision=jax.lax.Precision.HIGHEST)


NAN_CONDITION = 1e5  # TE-NAS's stand-in for an undefined condition number


def weights_only(path, leaf) -> bool:
  """The reference code's parameter set: conv kernels, BatchNorm scales, classifier matrix."""
  del leaf
  return getattr(path[-1], "key", None) in ("kernel", "scale")


def _check_dtype(dtype: str) -> None:
  if dtype == "float64" and not jax.config.jax_enable_x64:
    raise ValueError("the NTK in float64 needs JAX_ENABLE_X64=1 (or jax_enable_x64=True)")


def eigenvalues(theta: jax.Array, dtype: str = "float32") -> jax.Array:
  """Eigenvalues of a symmetric kernel (n, n), ascending, in ``dtype``.

  float64 needs ``JAX_ENABLE_X64=1`` (JAX silently computes float32 otherwise, so we refuse).
  """
  _check_dtype(dtype)
  theta = theta.astype(dtype)
  return jnp.linalg.eigvalsh(0.5 * (theta + theta.T))


def condition_number(eigvals_ascending: jax.Array, index: int = 2) -> jax.Array:
  """K_i = lambda_1 / lambda_(n-i) with lambda sorted descending (i=0: largest / smallest).

  Args:
    eigvals_ascending: (n,) as returned by ``eigenvalues``.
    index: i in [0, n-1).
  Returns:
    scalar. As TE-NAS's ``np.nan_to_num(cond, nan=1e5)``: NaN (0 / 0) becomes
    ``NAN_CONDITION``, +inf the largest finite value of the dtype. A zero or negative lambda_(n-i)
    (a positive semi-definite kernel has none; float rounding makes them) means the kernel is
    singular: K is the largest finite value, never a negative number that would rank best.
  """
  lam = eigvals_ascending[index]
  k = eigvals_ascending[-1] / lam
  big = jnp.finfo(k.dtype).max
  k = jnp.where(jnp.isnan(k), NAN_CONDITION, jnp.where((lam <= 0) | (k == jnp.inf), big, k))
  return k


def make_ntk_fn(net, template_params, template_stats, *, init: str = "kaiming",
                params: str = "weights", dtype: Optional[str] = None) -> Callable:
  """Builds ``theta_fn(mask, x, init_key) -> Theta (n, n)`` for a masked Flax network.

  The network runs with training-mode BatchNorm (batch statistics; the running-statistics
  update is discarded). Parameters are redrawn from ``init_key`` with ``init`` (Kaiming uses
  fan-out, as TE-NAS intends for this network). ``dtype='float64'`` computes J J^T in float64.
  """
  param_filter = weights_only if params == "weights" else None

  def theta_fn(mask, x, init_key):
    p = models.initialize(init_key, template_params, init, "fan_out")

    def apply_fn(p, x):
      return net.apply({"params": p, "batch_stats": template_stats}, x, mask, train=True,
                       mutable=["batch_stats"])[0]

    return empirical_ntk(apply_fn, p, x, param_filter, dtype)

  return theta_fn

