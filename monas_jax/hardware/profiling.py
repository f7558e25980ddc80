"""On-host latency profiling with XLA (the paper's own method), and end-to-end measurement.

``profile_operators`` times each operator *in place*: inside the real network (stem, reduction
blocks, head), at each stage's input size and width, as the difference between two compiled
networks that differ only in that operator, divided by the cells it appears in:

- baseline: every cell is the identity cell ``IDENTITY`` (node 3 = node 1 = the input);
- operator o at stage s: the cells of stage s get o on edge 3 (node 3 <- node 0) of the identity
  cell, so node 3 = o(x) + x: the operator plus the node sum it feeds, as in a real cell.

The baseline itself is the table's overhead; the all-``none`` network (output identically zero)
is timed as ``zero_output_ms``. XLA removes operators whose output is unused, so host profiles
set ``prune_dead``; what it does with operators on an all-zero input is whatever it does, and it
is measured, not assumed.

``measure_networks`` times whole standalone networks (``models.Network`` with ``ops_per_edge``)
for validating a table against real end-to-end latency.

Timing protocol: batch 1, inference mode (``train=False``), parameters passed as arguments (not
folded into the program), ahead-of-time compiled, warm-up calls, then ``rounds`` rounds that each
time every network once for at least ``min_repeat_s`` (``block_until_ready`` after every call);
the result is the median over rounds of the mean call time. Interleaving the networks round by
round spreads slow drifts in machine load over all of them alike.

This module measures time, so it is not pure; it never prints or writes files.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from monas_jax import models, space
from monas_jax.hardware import latency

IDENTITY = space.parse_arch_str(
    "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
ALL_NONE = (space.OP_INDEX["none"],) * space.NUM_EDGES
PROFILE_EDGE = 3  # node 3 <- node 0: the operator's output is added to the node-1 path


def op_cell(op: int) -> tuple[int, ...]:
  """The identity cell with operator ``op`` on edge 3: node 3 = op(x) + x."""
  ops = list(IDENTITY)
  ops[PROFILE_EDGE] = op
  return tuple(ops)


class StagewiseNetwork(nn.Module):
  """``models.Network`` with a (possibly different) standalone cell per stage.

  Parameter names are those of ``models.Network``, so with the same cell in every stage it is
  that network.
  """

  channels: int = 16
  cells_per_stage: int = 5
  num_classes: int = 10
  stage_ops: Sequence[Sequence[int]] = (IDENTITY,) * 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    c = self.channels
    x = models.conv(c, 3, name="stem_conv")(x)  # same stem as models.Network
    x = models.batch_norm(train, name="stem_bn")(x)
    for stage in range(3):
      if stage > 0:
        c *= 2
        x = models.ResidualReduction(c, name=f"reduction{stage}")(x, train)
      for i in range(self.cells_per_stage):
        x = models.Cell(c, tuple(self.stage_ops[stage]), name=f"stage{stage}_cell{i}")(
            x, None, train)
    return models.Head(self.num_classes, name="head")(x, train)


def supernet_variables(seed: int = 0, channels: int = 16, cells_per_stage: int = 5,
                       num_classes: int = 10, input_size: int = 32):
  """Variables of the supernet (every operator on every edge); any cell's are a subset.

  Shapes come from ``jax.eval_shape`` (no compile: jitting the supernet's init costs tens of
  seconds on a small CPU); values are drawn with numpy: Kaiming-normal kernels, BatchNorm at
  its initial statistics (mean 0, var 1, scale 1, shift 0), zero biases. Latency does not
  depend on the values as long as they are ordinary floats (no denormals, NaN or inf).
  """
  net = models.Network(channels, cells_per_stage, num_classes)
  x = jnp.zeros((1, input_size, input_size, 3))
  mask = jnp.ones((space.NUM_EDGES, space.NUM_OPS))
  shapes = jax.eval_shape(lambda k: net.init(k, x, mask, train=False), jax.random.key(0))
  rng = np.random.default_rng(seed)
  flat = {}
  for path, leaf in traverse_util.flatten_dict(shapes).items():
    if path[0] not in ("params", "batch_stats"):
      continue  # sown activations (the "relu" collection) are outputs, not variables
    if path[-1] == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      v = rng.normal(0.0, math.sqrt(2.0 / fan_in), leaf.shape)
    elif path[-1] in ("var", "scale"):
      v = np.ones(leaf.shape)
    else:  # mean, bias
      v = np.zeros(leaf.shape)
    flat[path] = jnp.asarray(v, leaf.dtype)
  return traverse_util.unflatten_dict(flat)


def restrict_variables(variables, stage_ops: Sequence[Sequence[int]]):
  """The supernet's variables restricted to a network with cell ``stage_ops[s]`` in stage s."""
  flat = traverse_util.flatten_dict(variables)
  keep = {}
  for path, leaf in flat.items():
    stage = next((int(p[len("stage"):].split("_")[0]) for p in path if p.startswith("stage")),
                 None)
    edge = next((int(p[len("edge"):]) for p in path if p.startswith("edge")), None)
    if edge is not None:
      op_name = path[path.index(f"edge{edge}") + 1]
      if space.OP_INDEX[op_name] != stage_ops[stage][edge]:
        continue
    keep[path] = leaf
  return traverse_util.unflatten_dict(keep)


def compile_network(stage_ops, variables, x, channels: int = 16, cells_per_stage: int = 5,
                    num_classes: int = 10) -> Callable:
  """AOT-compiled inference apply ``(variables, x) -> logits`` of a stagewise network."""
  stage_ops = tuple(tuple(int(o) for o in ops) for ops in stage_ops)
  if len(set(stage_ops)) == 1:  # one cell throughout: the package's own standalone network
    net = models.Network(channels, cells_per_stage, num_classes, ops_per_edge=stage_ops[0])
  else:
    net = StagewiseNetwork(channels, cells_per_stage, num_classes, stage_ops)
  v = restrict_variables(variables, stage_ops)
  compiled = jax.jit(lambda v, x: net.apply(v, x, train=False)).lower(v, x).compile()
  return lambda: compiled(v, x)


def time_calls(calls: Sequence[Callable], warmup: int = 3, rounds: int = 15,
               min_repeat_s: float = 0.01, clock=time.perf_counter) -> np.ndarray:
  """Interleaved timing of zero-argument calls. Returns (len(calls), rounds) ms per call.

  Each call's result is waited for (``block_until_ready``) before the next starts.
  """
  numbers = []
  for fn in calls:
    for _ in range(warmup):
      jax.block_until_ready(fn())
    t0 = clock()
    jax.block_until_ready(fn())
    single = max(clock() - t0, 1e-7)
    numbers.append(max(1, math.ceil(min_repeat_s / single)))
  out = np.empty((len(calls), rounds))
  for r in range(rounds):
    for i, (fn, number) in enumerate(zip(calls, numbers)):
      t0 = clock()
      for _ in range(number):
        jax.block_until_ready(fn())
      out[i, r] = (clock() - t0) / number * 1e3
  return out


def profile_operators(seed: int = 0, channels: int = 16, cells_per_stage: int = 5,
                      num_classes: int = 10, input_size: int = 32, warmup: int = 3,
                      rounds: int = 15, min_repeat_s: float = 0.01,
                      progress: Optional[Callable] = None) -> dict:
  """Times every operator in place at every stage on the default JAX device.

  Returns:
    ``cell_stage_op_ms`` (3, 5): ms of one operator in one cell of stage s (``none`` 0, negative
    differences clipped to 0); ``overhead_ms``; ``zero_output_ms``; ``raw_ms``: per timed
    network, the median ms and the per-round ms; ``compile_s``.
  """
  variables = supernet_variables(seed, channels, cells_per_stage, num_classes, input_size)
  x = jnp.asarray(np.random.default_rng(seed + 1).normal(size=(1, input_size, input_size, 3)),
                  jnp.float32)
  nets = {"identity": (IDENTITY,) * 3, "all_none": (ALL_NONE,) * 3}
  for s in range(3):
    for o in range(1, space.NUM_OPS):
      ops = [IDENTITY] * 3
      ops[s] = op_cell(o)
      nets[f"stage{s}_{space.OPS[o]}"] = tuple(ops)
  t0 = time.perf_counter()
  calls = []
  for name, stage_ops in nets.items():
    calls.append(compile_network(stage_ops, variables, x, channels, cells_per_stage, num_classes))
    if progress:
      progress(name)
  compile_s = time.perf_counter() - t0
  ms = time_calls(calls, warmup, rounds, min_repeat_s)
  med = dict(zip(nets, np.median(ms, axis=1)))
  table = np.zeros((3, space.NUM_OPS))
  for s in range(3):
    for o in range(1, space.NUM_OPS):
      table[s, o] = max(0.0, (med[f"stage{s}_{space.OPS[o]}"] - med["identity"]) / cells_per_stage)
  return {"cell_stage_op_ms": table, "overhead_ms": float(med["identity"]),
          "zero_output_ms": float(med["all_none"]),
          "raw_ms": {n: {"median": float(med[n]), "rounds": ms[i].tolist()}
                     for i, n in enumerate(nets)},
          "compile_s": compile_s}


def host_profile(result: dict, *, name: str, device: str, clock_mhz, runtime: str, date: str,
                 provenance: str, cells_per_stage: int = 5, **extra) -> latency.Profile:
  """A "host" kind Profile from ``profile_operators``' result."""
  clock = {} if clock_mhz is not None else {"clock_note": "not reported by the host"}
  return latency.make_profile(
      name=name, device=device, kind="host", clock_mhz=clock_mhz, runtime=runtime, batch_size=1,
      provenance=provenance, date=date,
      table={"form": "cell_stage_op", "ops": list(space.OPS),
             "ms": np.round(result["cell_stage_op_ms"], 6)},
      overhead_ms=round(result["overhead_ms"], 6), cells_per_stage=cells_per_stage,
      prune_dead=True, fold_zero_output=True, zero_output_ms=round(result["zero_output_ms"], 6),
      **clock, **extra)


def measure_networks(cells: Sequence[Sequence[int]], seed: int = 0, channels: int = 16,
                     cells_per_stage: int = 5, num_classes: int = 10, input_size: int = 32,
                     warmup: int = 3, rounds: int = 15, min_repeat_s: float = 0.01,
                     progress: Optional[Callable] = None) -> dict:
  """End-to-end latency of the standalone network of each cell (operator tuples).

  Returns ``latency_ms`` (n,) medians, ``rounds_ms`` (n, rounds), ``compile_s``.
  """
  variables = supernet_variables(seed, channels, cells_per_stage, num_classes, input_size)
  x = jnp.asarray(np.random.default_rng(seed + 1).normal(size=(1, input_size, input_size, 3)),
                  jnp.float32)
  t0 = time.perf_counter()
  calls = []
  for ops in cells:
    calls.append(compile_network((tuple(ops),) * 3, variables, x, channels, cells_per_stage,
                                 num_classes))
    if progress:
      progress(ops)
  compile_s = time.perf_counter() - t0
  ms = time_calls(calls, warmup, rounds, min_repeat_s)
  return {"latency_ms": np.median(ms, axis=1), "rounds_ms": ms, "compile_s": compile_s}
