"""Batched, compiled evaluation of an indicator over many masks (one compile for all masks).

With more than one local device the mask (candidate) axis of every chunk is sharded over them
(a 1-D mesh, ``jax.sharding``); results come back in mask order, the same values as on one
device.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space


AUTO = 0  # chunk size chosen by BatchEvaluator from device memory
MAX_AUTO_CHUNK = 64


def default_chunk_size() -> int:
  """Masks per vmapped call when the config says 0 (auto).

  On CPU one mask per call is fastest (measured in benchmarks/search_speed.py: vmapping the NTK
  over 4 masks took 1.9 s per mask against 0.7 s one at a time on 2 cores); accelerators gain
  from batching, as many masks as their memory holds (``AUTO``: see BatchEvaluator).
  """
  return 1 if jax.default_backend() == "cpu" else AUTO


def chunk_for_memory(bytes_per_mask: float, bytes_free: float, num_devices: int = 1,
                     cap: int = MAX_AUTO_CHUNK, fraction: float = 0.5) -> int:
  """Masks per call: the largest power of two (per device, at most ``cap``) whose working set
  (``bytes_per_mask`` each, from the compiled function's memory analysis) fits in ``fraction``
  of ``bytes_free`` (bytes per device); times the device count. At least one per device."""
  per_dev = 1
  while per_dev * 2 <= cap and per_dev * 2 * bytes_per_mask <= fraction * bytes_free:
    per_dev *= 2
  return per_dev * max(int(num_devices), 1)


def _free_bytes(device) -> Optional[int]:
  """Free memory of an accelerator (bytes), None where the backend does not say (CPU)."""
  try:
    st = device.memory_stats()
  except Exception:  # noqa: BLE001  (backends without memory stats raise various errors)
    return None
  if not st or "bytes_limit" not in st:
    return None
  return int(st["bytes_limit"]) - int(st.get("bytes_in_use", 0))


MESH_AXIS = "masks"


class BatchEvaluator:
  """Evaluates ``fn(mask, images, key, init_key)`` over a stack of masks, ``chunk`` at a time.

  The function is vmapped over masks with images and keys shared, jitted once for the chunk
  shape and compiled ahead of time, so ``compile_seconds`` is measured apart from compute.
  Results are memoised by (mask, key, init key): the function is pure, so a mask seen again
  with the same keys (the same first round of searches that differ only in their weights, a
  resumed run) is never recomputed.

  ``devices`` (default: all local devices): with more than one, ``chunk`` is rounded up to a
  multiple of their number and each chunk's masks are split evenly over them (images and keys
  replicated); the values are gathered back in mask order.

  ``chunk=AUTO`` (0): one mask per device is compiled first; its memory analysis (temporaries,
  arguments, outputs) gives the bytes per mask, and the chunk becomes the largest power of two
  (at most 64 per device) that fits in half the free memory of a device (``memory_bytes``
  overrides what the device reports; without either, one mask per device). The function is
  then compiled again for that chunk; ``compile_seconds`` counts both compiles.
  """

  def __init__(self, fn: Callable, images: jax.Array, chunk: int,
               devices: Optional[Sequence[jax.Device]] = None,
               memory_bytes: Optional[int] = None):
    devices = list(jax.local_devices() if devices is None else devices)
    self.num_devices = len(devices)
    n = self.num_devices
    if int(chunk) == AUTO:
      probe = BatchEvaluator(fn, images, n, devices)
      free = memory_bytes if memory_bytes is not None else _free_bytes(devices[0])
      ma = probe._compiled.memory_analysis()
      self.bytes_per_mask = None if ma is None else float(
          ma.temp_size_in_bytes + ma.output_size_in_bytes + ma.argument_size_in_bytes)
      chunk = (n if free is None or not self.bytes_per_mask
               else chunk_for_memory(self.bytes_per_mask, free, n))
      if chunk == n:
        self.__dict__.update({**probe.__dict__, "bytes_per_mask": self.bytes_per_mask})
        return
      probe_s = probe.compile_seconds
    else:
      probe_s, self.bytes_per_mask = 0.0, None
    self.chunk = -(-max(int(chunk), 1) // n) * n  # a multiple of the device count
    batched = jax.vmap(fn, in_axes=(0, None, None, None))
    key = jax.random.key(0)
    masks = jnp.zeros((self.chunk, space.NUM_EDGES, space.NUM_OPS), jnp.float32)
    if n > 1:
      mesh = jax.sharding.Mesh(np.asarray(devices), (MESH_AXIS,))
      self._shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(MESH_AXIS))
      self._replicate = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
      images = jax.device_put(images, self._replicate)
      # shard_map, not a sharded jit: every device runs exactly the one-device program on its
      # slice of masks. (Letting XLA's SPMD partitioner split the vmapped function changed
      # synflow's gradients on CPU by up to 8 % on devices other than the first: vmapped
      # convolution gradients come out wrong under a sharded jit, reduced to plain JAX in
      # benchmarks/xla_repro_sharded_conv_grad.py.)
      P = jax.sharding.PartitionSpec
      jitted = jax.jit(jax.shard_map(batched, mesh=mesh, in_specs=(P(MESH_AXIS), P(), P(), P()),
                                     out_specs=P(MESH_AXIS), check_vma=False))
      masks, key = jax.device_put(masks, self._shard), jax.device_put(key, self._replicate)
    else:
      self._shard = self._replicate = None
      jitted = jax.jit(batched)
    self.images = images
    t = time.perf_counter()
    self._compiled = jitted.lower(masks, images, key, key).compile()
    self.compile_seconds = time.perf_counter() - t + probe_s
    self.compute_seconds = 0.0
    self.evaluations = 0
    self._memo: dict[bytes, np.ndarray] = {}

  def with_images(self, images) -> "BatchEvaluator":
    """The same compiled function over other data of the same shapes and dtypes (images, or
    (images, labels)): no compile, its own memo and counters (``compile_seconds`` 0).

    The data are an argument of the compiled function, not a constant in it, so one compile
    serves every dataset of one shape (searches over an image folder holding the bundled sample
    and over the sample itself compile once)."""
    sig = lambda t: [(tuple(np.shape(x)), str(jnp.asarray(x).dtype))  # noqa: E731
                     for x in jax.tree_util.tree_leaves(t)]
    if sig(images) != sig(self.images):
      raise ValueError(f"with_images needs data shaped as compiled, {sig(self.images)}; got "
                       f"{sig(images)}")
    ev = object.__new__(BatchEvaluator)
    ev.__dict__.update(self.__dict__)
    ev.images = images if self._replicate is None else jax.device_put(images, self._replicate)
    ev.compile_seconds, ev.compute_seconds, ev.evaluations, ev._memo = 0.0, 0.0, 0, {}
    return ev

  def _put(self, masks: np.ndarray, key: jax.Array, init_key: jax.Array):
    """The call's arguments placed as compiled: masks split over the devices, keys on all."""
    if self._shard is None:
      return jnp.asarray(masks), key, init_key
    return (jax.device_put(masks, self._shard), jax.device_put(key, self._replicate),
            jax.device_put(init_key, self._replicate))

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
      m_i, k_i, ik_i = self._put(work[i:i + self.chunk], key, init_key)
      out.append(np.asarray(self._compiled(m_i, self.images, k_i, ik_i)))  # gathered in order
      if on_chunk:
        on_chunk(min(i + self.chunk, m), m)
    self.compute_seconds += time.perf_counter() - t
    self.evaluations += m
    if out:
      values = np.concatenate(out)[:m].astype(np.float64)
      self._memo.update(zip(todo_ids, values))
    return np.stack([self._memo[k] for k in ids])

