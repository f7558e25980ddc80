"""Batched, compiled evaluation of an indicator over many masks (one compile for all masks)."""
from __future__ import annotations

import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space


def default_chunk_size() -> int:
  """Masks per vmapped call when the config says 0 (auto).

  On CPU one mask per call is fastest (measured in benchmarks/search_speed.py: vmapping the NTK
  over 4 masks took 1.9 s per mask against 0.7 s one at a time on 2 cores); accelerators gain
  from batching.
  """
  return 1 if jax.default_backend() == "cpu" else 16


class BatchEvaluator:
  """Evaluates ``fn(mask, images, key, init_key)`` over a stack of masks, ``chunk`` at a time.

  The function is vmapped over masks with images and keys shared, jitted once for the chunk
  shape and compiled ahead of time, so ``compile_seconds`` is measured apart from compute.
  """

  def __init__(self, fn: Callable, images: jax.Array, chunk: int):
    self.chunk = int(chunk)
    self.images = images
    batched = jax.vmap(fn, in_axes=(0, None, None, None))
    key = jax.random.key(0)
    masks = jnp.zeros((self.chunk, space.NUM_EDGES, space.NUM_OPS), jnp.float32)
    t = time.perf_counter()
    self._compiled = jax.jit(batched).lower(masks, images, key, key).compile()
    self.compile_seconds = time.perf_counter() - t
    self.compute_seconds = 0.0

  def __call__(self, masks: np.ndarray, key: jax.Array, init_key: jax.Array) -> np.ndarray:
    """masks (m, 6, 5) -> values (m,) float64."""
    masks = np.asarray(masks, np.float32)
    m = len(masks)
    pad = (-m) % self.chunk
    if pad:  # repeat the last mask so every call has the compiled shape
      masks = np.concatenate([masks, np.repeat(masks[-1:], pad, axis=0)])
    t = time.perf_counter()
    out = [np.asarray(self._compiled(jnp.asarray(masks[i:i + self.chunk]), self.images, key,
                                     init_key))
           for i in range(0, len(masks), self.chunk)]
    self.compute_seconds += time.perf_counter() - t
    return np.concatenate(out)[:m].astype(np.float64)

