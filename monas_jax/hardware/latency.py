"""Lookup-table latency model (MONAS Algorithm 1), device profiles and memory budgets.

Algorithm 1: the latency of the deployed network (C=16, N=5, batch 1, CIFAR input) is

    L(mask) = overhead_ms + sum_s N_s * sum_{e, o} cell_ms[s, e, o] * mask[e, o]

where ``cell_ms[s, e, o]`` is the time of operator ``o`` on edge ``e`` of one cell of stage ``s``
(stage s sees input ``32 / 2**s`` pixels wide with ``16 * 2**s`` channels), ``N_s`` the cells per
stage (5) and ``overhead_ms`` the rest of the network (stem, reduction blocks, head, runtime).

Two options of a profile make the sum follow what real compilers do with a cell (both off for the
reference MCU table; fitted devices and the XLA host profile turn them on when they help):

- ``prune_dead``: an operator whose output cannot reach the cell output (every path from it runs
  into ``none`` edges) is removed by dead-code elimination, so it costs nothing.
- ``fold_zero_output``: when the cell output is identically zero, every cell after it computes on
  constants and the whole network folds to (nearly) a constant: it costs ``zero_output_ms``.

A node is *identically zero* when every active operator into it is ``none`` or reads an
identically-zero node (skip and pooling map zero to zero; ReLU-conv-BN does too for the untrained
BatchNorm statistics that benchmark networks are exported with).

Supernet masks (several operators per edge): the sum runs over every active operator, i.e. the
cost of executing each of them once -- the supernet's own forward cost without the mean. It is
what the pruning search differences (delta L of removing one operator is that operator's entry,
plus any dead-code effect) and it bounds the latency of every single-path cell inside the mask
from above. ``cheapest_latency_ms`` gives the other end: the cheapest single-path cell inside.

Another network size (``network_profile``, ``scale_to_network``): a table holds times for the
network it was measured on (``measured_network``: 32x32x3 input, C=16, N=5 for every built-in).
For another input size H x W, input channels, C or N the estimate scales each entry by the
operator's cost relative to the measured network, per stage s (maps of H_s = H / 2**s pixels,
C_s = C * 2**s channels): convolutions (1x1, 3x3) by C_s^2 x H_s x W_s, skip, pooling and
``none`` by C_s x H_s x W_s; Algorithm 1 then sums over the new N cells per stage; the overhead
(stem, the two reduction blocks, head) scales by the multiply-accumulates of the stem and the
reduction blocks (``outer_macs``); the zero-output time is kept. It assumes time proportional to
work, which a device that is underused at the measured size (fixed per-layer costs) breaks; the
result is marked ``estimate`` and its ``latency_provenance`` says "scaled from ...". At the
measured network the table is used as it is (bit-identical). A table measured at the user's own
size (``experiments.latency fit --image_size= --image_channels= --channels=``) is used there
unscaled.

Profiles (``profiles.py``, re-exported here) are JSON files (``profiles/*.json``, schema in
``profile_from_dict``); a profile holds
the table, the flags above, its device, runtime, clock, batch size, provenance and date, and for
MCUs the SRAM and flash capacity used by ``fits_memory``.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space
from monas_jax.hardware import cell_graph, memory
# Profiles (schema, files, built-ins, scaling, the LatencyTable arrays) live in profiles.py;
# re-exported here so that ``latency.load_profile`` and friends keep working.
from monas_jax.hardware.profiles import (  # noqa: F401
    COMPUTE_BOUND_OPS, KINDS, MEMORY_BOUND_OPS, NUM_STAGES, REFERENCE_CHANNELS,
    REFERENCE_IMAGE_CHANNELS, REFERENCE_IMAGE_SIZE, SCHEMA_VERSION, TABLE_FORMS, LatencyTable,
    MeasuredNetwork, Profile, builtin_profiles, expand_table, latency_table, load_profile,
    make_profile, measured_network, outer_macs, profile_from_dict, profile_to_dict, profiles_dir,
    save_profile, scale_profile, scale_to_network, stage_cost_factors)


def live_mask(mask) -> jax.Array:
  """Active operators whose output reaches the cell output. (..., 6, 5) -> (..., 6, 5).

  An operator other than ``none`` on edge ``j <- i`` is live when node j reaches node 3 through
  edges that carry an active operator other than ``none``; dead ones are what dead-code
  elimination removes. ``none`` is never live (it does no work).
  """
  return cell_graph.live_mask(jnp.asarray(mask), jnp)


def output_is_zero(mask) -> jax.Array:
  """Whether the cell output (node 3) is identically zero. (..., 6, 5) -> (...,) bool."""
  return cell_graph.output_is_zero(jnp.asarray(mask), jnp)


def _latency(t: LatencyTable, mask, xp):
  m = xp.asarray(mask, t.cell_ms.dtype)
  network_ms = xp.einsum("s,seo->eo", t.cells_per_stage, t.cell_ms)
  eff = xp.where(t.prune_dead > 0, cell_graph.live_mask(m, xp), m)
  body = t.overhead_ms + xp.sum(eff * network_ms, axis=(-2, -1))
  folds = cell_graph.output_is_zero(m, xp) & (t.fold_zero_output > 0)
  return xp.where(folds, t.zero_output_ms, body)


def latency_ms(table: LatencyTable, mask) -> jax.Array:
  """Algorithm 1 latency (ms) of a cell or supernet mask; pure and jit-able.

  Args:
    table: a ``LatencyTable`` (``profile.arrays``).
    mask: (6, 5) 0/1, one-hot per edge for a cell or several ones per edge for a supernet;
      leading batch dimensions (..., 6, 5) are allowed.

  Returns:
    (...) ms. For a supernet mask, the sum over every active operator (see module docstring).
  """
  return _latency(table, mask, jnp)


def estimate_ms(profile, arch) -> float:
  """Latency (ms) of one cell (Arch, arch string, operator tuple or one-hot mask), in float64."""
  p = load_profile(profile) if isinstance(profile, str) else profile
  mask = space.to_arch(arch).to_mask()
  return float(_latency(latency_table(p, np.float64, np), mask, np))


def estimate_many_ms(profile, ops) -> np.ndarray:
  """Latency (ms, float64) of many cells: ``ops`` (n, 6) operator indices or (n, 6, 5) masks."""
  p = load_profile(profile) if isinstance(profile, str) else profile
  a = np.asarray(ops)
  if a.ndim == 2:
    masks = np.zeros(a.shape + (space.NUM_OPS,))
    np.put_along_axis(masks, a[..., None].astype(int), 1.0, axis=-1)
  else:
    masks = a.astype(np.float64)
  return _latency(latency_table(p, np.float64, np), masks, np)


@functools.lru_cache(maxsize=1)
def _all_cell_masks() -> np.ndarray:
  """(15625, 6, 5) one-hot masks of every cell, lexicographic order."""
  ops = np.array(list(space.all_ops_lexicographic()), np.int32)
  return np.eye(space.NUM_OPS, dtype=np.float32)[ops]


def cheapest_latency_ms(profile, mask) -> jax.Array:
  """Latency (ms) of the cheapest single-path cell inside a supernet mask (6, 5).

  Enumerates every cell the mask contains (at most 5**6), so it is exact for any profile, dead
  code and zero-output folding included. Pure and jit-able when given a ``LatencyTable``.
  """
  t = profile.arrays if isinstance(profile, Profile) else (
      load_profile(profile).arrays if isinstance(profile, str) else profile)
  cells = jnp.asarray(_all_cell_masks())
  m = jnp.asarray(mask, jnp.float32)
  inside = jnp.all(jnp.sum(cells * m, axis=-1) > 0, axis=-1)
  return jnp.min(jnp.where(inside, latency_ms(t, cells), jnp.inf))


def cheapest_cell(profile, mask) -> tuple[space.Arch, float]:
  """The cheapest single-path cell inside a supernet mask and its latency (ms, float64)."""
  p = load_profile(profile) if isinstance(profile, str) else profile
  m = space.validate_mask(mask)
  cells = space.single_path_ops(m)
  lat = estimate_many_ms(p, np.array(cells))
  i = int(np.argmin(lat))
  return space.Arch(cells[i]), float(lat[i])


# ---------------------------------------------------------------------------------------------
# Where the tables apply.

def target_network(dataset, image_size: int, image_channels: int = 3, channels: int = 16,
                   cells_per_stage: int = 5) -> MeasuredNetwork:
  """The network whose latency a table must give, for ``scale_to_network``.

  NAS-Bench-201's own network (C=16, N=5) on its datasets at their native sizes in RGB is the
  network the tables were measured on: 32x32, also for ImageNet16-120's 16x16 (as MONAS and
  every earlier result of this package give it the CIFAR table). Any other network is itself.
  """
  from monas_jax import data
  native = data.IMAGE_SIZE.get(dataset)
  if (native is not None and image_size == native and image_channels == 3 and channels == 16
      and cells_per_stage == 5):
    return MeasuredNetwork(REFERENCE_IMAGE_SIZE, REFERENCE_IMAGE_CHANNELS, REFERENCE_CHANNELS, 5)
  return MeasuredNetwork(int(image_size), int(image_channels), int(channels),
                         int(cells_per_stage))


def network_profile(profile, dataset="cifar10", channels: int = 16,
                    cells_per_stage: int = 5) -> Profile:
  """``profile`` (a Profile, built-in name or JSON path) for the C = channels, N =
  cells_per_stage network on ``dataset``'s input (a name of data.DATASETS or a data.DataSpec):
  the profile itself where it was measured on that network, else its scaled estimate
  (``scale_to_network``; ``latency_provenance`` says which)."""
  from monas_jax import data
  spec = data.as_spec(dataset)
  p = load_profile(profile)
  net = target_network(spec.name, spec.image_size, spec.channels, channels, cells_per_stage)
  if tuple(net) == tuple(measured_network(p)):
    return p
  return _scaled(p, net)


@functools.lru_cache(maxsize=64)
def _scaled(p: Profile, net: MeasuredNetwork) -> Profile:
  # Profiles compare by identity: a built-in is one object per process, so this caches its
  # scaled copies (and their jit-ed arrays keep one identity per network).
  return scale_to_network(p, net)


def config_profile(config) -> Profile:
  """``network_profile`` of ``config.hardware.profile`` for the config's input (dataset,
  ``image_size``, ``image_channels``) and deployed network (``config.network``)."""
  net = config.get("network")
  spec = _input_spec(config)
  return network_profile(config.hardware.profile, spec,
                         16 if net is None else int(net.channels),
                         5 if net is None else int(net.cells_per_stage))


def _input_spec(config):
  """A DataSpec with the config's dataset name, image size and channels (what the latency
  scaling reads; classes and statistics are not needed and may not be known yet)."""
  from monas_jax import data
  return data.DataSpec(config.dataset, data.image_size_of(config),
                       int(config.get("image_channels", 3)), 2, (0.0,), (1.0,), 1)


def latency_provenance(profile: Profile) -> str:
  """One line: where a profile's latency comes from, e.g. "scaled from stm32l432 measured at
  32x32x3, C=16, N=5 to 48x48x1, C=8, N=3 by operator cost (...)" for a scaled estimate, or
  "stm32l432 table for 32x32x3, C=16, N=5" for a table used where it was made."""
  scaled = profile.extra.get("scaled")
  if scaled:
    return scaled["provenance"]
  return f"{profile.name} table for {measured_network(profile).label()}"


# ---------------------------------------------------------------------------------------------
# Memory budgets.


def fits_memory(profile, flash_bytes: int, peak_sram_bytes: int) -> bool:
  """Whether a network with these int8 weights (flash) and peak activations (SRAM) fits the MCU.

  Args:
    profile: an MCU profile (with ``sram_bytes`` and ``flash_bytes``) or its name.
    flash_bytes: bytes the deployed weights occupy in flash.
    peak_sram_bytes: peak bytes of live activations in SRAM.
  """
  p = load_profile(profile) if isinstance(profile, str) else profile
  if p.sram_bytes is None or p.flash_bytes is None:
    raise ValueError(f"profile {p.name!r} (kind {p.kind!r}) has no sram_bytes/flash_bytes budget")
  if flash_bytes < 0 or peak_sram_bytes < 0:
    raise ValueError(f"byte counts must be >= 0, got flash {flash_bytes}, sram {peak_sram_bytes}")
  return bool(flash_bytes <= p.flash_bytes and peak_sram_bytes <= p.sram_bytes)


def memory_fits(profile, arch, dataset="cifar10", channels: int = 16,
                cells_per_stage: int = 5) -> bool:
  """Whether a cell deployed in int8 fits an MCU profile: the predicted ``.tflite`` file in flash
  and TFLM's host-build arena in SRAM (``memory.deployment_memory``); ``dataset`` a name of
  data.DATASETS or a data.DataSpec, C = channels, N = cells_per_stage."""
  mem = memory.deployment_memory(arch, dataset, channels, cells_per_stage)
  return fits_memory(profile, mem["tflite_bytes"], mem["tflm_arena_bytes"])


def describe_fields(arch, dataset="cifar10", channels: int = 16,
                    cells_per_stage: int = 5) -> dict[str, Any]:
  """Hardware fields of a cell for ``experiments.describe``.

  Returns:
    ``latency_ms``: {profile name: ms} for every built-in profile, for the C = channels, N =
    cells_per_stage network on ``dataset``'s input (``network_profile``: scaled where the table
    was measured on another network); ``latency_provenance``: {profile name: one line};
    ``fits``: {MCU profile name: bool}, the int8 ``.tflite`` in flash and TFLM's arena in SRAM
    (``memory.deployment_memory``'s ``tflite_bytes`` and ``tflm_arena_bytes``).
  """
  a = space.to_arch(arch)
  mem = memory.deployment_memory(a, dataset, channels, cells_per_stage)
  latency, provenance, fits = {}, {}, {}
  for name in builtin_profiles():
    p = network_profile(name, dataset, channels, cells_per_stage)
    latency[name] = estimate_ms(p, a)
    provenance[name] = latency_provenance(p)
    if p.kind == "mcu":
      fits[name] = fits_memory(p, mem["tflite_bytes"], mem["tflm_arena_bytes"])
  return {"latency_ms": latency, "latency_provenance": provenance, "fits": fits}
