"""Linear-region count (TE-NAS / MONAS indicator R): distinct ReLU activation patterns.

A sample's activation pattern is the sign bits (x > 0) of every ReLU output of the network: the
ReLU opening each active convolution operator and the final ReLU. R is the number of distinct
patterns over all samples. Bits are packed into uint32 words and rows counted with an exact
lexicographic sort, inside jit.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from monas_jax import models, space


def pack_bits(bits: jax.Array) -> jax.Array:
  """Boolean (n, b) -> uint32 (n, ceil(b / 32)), bit j of word w = bits[:, 32 w + j]."""
  n, b = bits.shape
  words = -(-b // 32)
  padded = jnp.zeros((n, words * 32), jnp.uint32).at[:, :b].set(bits.astype(jnp.uint32))
  shifts = jnp.arange(32, dtype=jnp.uint32)
  return jnp.sum(padded.reshape(n, words, 32) << shifts, axis=-1, dtype=jnp.uint32)


def count_distinct_rows(rows: jax.Array) -> jax.Array:
  """Number of distinct rows of an integer array (n, w), exactly (sort, then compare neighbours)."""
  n, w = rows.shape
  if n == 0:
    return jnp.asarray(0, jnp.int32)
  order = jnp.lexsort([rows[:, j] for j in reversed(range(w))])
  s = rows[order]
  changes = jnp.any(s[1:] != s[:-1], axis=1)
  return 1 + jnp.sum(changes, dtype=jnp.int32)


def edge_op(path) -> tuple[int, int] | None:
  """(edge, operator) indices of a leaf inside a cell's ``edge{e}/{operator}`` scope, else None.

  ``path`` is a ``jax.tree_util`` key path (e.g. of the sown ``relu`` collection).
  """
  names = [getattr(p, "key", None) for p in path]
  for i, name in enumerate(names):
    if isinstance(name, str) and name.startswith("edge") and name[4:].isdigit():
      return int(name[4:]), space.OP_INDEX[names[i + 1]]
  return None


def activation_patterns(relu_tree, mask: jax.Array) -> jax.Array:
  """Sign bits of every sown ReLU output: boolean (n, bits).

  ReLUs of operators that the mask prunes are forced to 0, so their bits are constant and
  cannot split regions (the pattern width stays static across masks).
  """
  cols = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(relu_tree)[0]:
    bits = (leaf > 0).reshape(leaf.shape[0], -1)
    where = edge_op(path)
    if where is not None:
      bits = bits & (mask[where] > 0)
    cols.append(bits)
  return jnp.concatenate(cols, axis=1)


def make_region_fn(net, template_params, template_stats, *, init: str = "kaiming") -> Callable:
  """Builds ``count_fn(mask, xs, init_key) -> R`` for a masked single-cell network.

  Args of count_fn: mask (6, 5); xs (num_batches, num_samples, h, w, c) inputs, each batch run
  separately in training-mode BatchNorm; init_key draws Kaiming fan-in parameters.
  Returns the int32 number of distinct activation patterns over all num_batches * num_samples.
  """

  def count_fn(mask, xs, init_key):
    p = models.initialize(init_key, template_params, init, "fan_in")

    def patterns(x):
      _, state = net.apply({"params": p, "batch_stats": template_stats}, x, mask, train=True,
                           mutable=["batch_stats", "relu"])
      return pack_bits(activation_patterns(state["relu"], mask))

    words = jax.lax.map(patterns, xs)  # (batches, samples, words)
    return count_distinct_rows(words.reshape(-1, words.shape[-1]))

  return count_fn
