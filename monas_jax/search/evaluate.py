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
  Results are memoised by (mask, key, init key): the function is pure, so a mask seen again
  with the same keys (the same first round of searches that differ only in their weights, a
  resumed run) is never recomputed.
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
    self.evaluations = 0
    self._memo: dict[bytes, np.ndarray] = {}

  def clear_memo(self) -> None:
    """Forgets memoised values (the compiled function stays)."""
    self._memo.clear()

  def __call__(self, masks: np.ndarray, key: jax.Array, init_key: jax.Array,
               on_chunk: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """masks (m, 6, 5) -> values (m, ...) float64; ``on_chunk(done, total)`` after each chunk."""
    masks = np.asarray(masks, np.float32)
    keys = (np.asarray(jax.random.key_data(key)).tobytes()
            + np.asarray(jax.random.key_data(init_key)).tobytes())
    ids = [m.astype(np.uint8).tobytes() + keys for m in masks]
    first = {}  # id -> row of its first occurrence, for ids not memoised yet
    for row, k in enumerate(ids):
      if k not in self._memo and k not in first:
        first[k] = row
    todo_ids = list(first)
    work = masks[list(first.values())]
    m = len(work)
    pad = (-m) % self.chunk
    if pad:  # repeat the last mask so every call has the compiled shape
      work = np.concatenate([work, np.repeat(work[-1:], pad, axis=0)])
    t = time.perf_counter()
    out = []
    for i in range(0, len(work), self.chunk):
      out.append(np.asarray(self._compiled(jnp.asarray(work[i:i + self.chunk]), self.images, key,
                                           init_key)))
      if on_chunk:
        on_chunk(min(i + self.chunk, m), m)
    self.compute_seconds += time.perf_counter() - t
    self.evaluations += m
    if out:
      values = np.concatenate(out)[:m].astype(np.float64)
      self._memo.update(zip(todo_ids, values))
    return np.stack([self._memo[k] for k in ids])

