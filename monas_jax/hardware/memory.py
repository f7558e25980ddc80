"""Memory of the deployed NAS-Bench-201 network: flash (weights) and peak SRAM (activations).

Moved from ``proxies/cost.py`` (which re-exports ``deployment_memory``): it is deployment cost,
checked against the MCU profiles' budgets beside the latency model.

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

import functools

from monas_jax import data, space

INPUT_SIZE = dict(data.IMAGE_SIZE)
NUM_CLASSES = dict(data.NUM_CLASSES)
_CONV1, _CONV3 = space.OP_INDEX["nor_conv_1x1"], space.OP_INDEX["nor_conv_3x3"]
_POOL, _SKIP, _NONE = (space.OP_INDEX[n] for n in ("avg_pool_3x3", "skip_connect", "none"))


def _check_dataset(dataset: str) -> None:
  if dataset not in INPUT_SIZE:
    raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(INPUT_SIZE)}")


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
