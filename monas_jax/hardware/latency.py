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
    COMPUTE_BOUND_OPS, KINDS, MEMORY_BOUND_OPS, NUM_STAGES, SCHEMA_VERSION, TABLE_FORMS,
    LatencyTable, Profile, builtin_profiles, expand_table, latency_table, load_profile,
    make_profile, profile_from_dict, profile_to_dict, profiles_dir, save_profile, scale_profile)


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

# The network every built-in table was measured or derived for (profiles' provenance).
TABLE_NETWORK = "C=16, N=5, RGB input of 32x32 (NAS-Bench-201's network; ImageNet16-120's 16x16 " \
    "is given the same table, as MONAS does)"


def table_unavailable(dataset: str, image_size: int, image_channels: int = 3,
                      channels: int = 16, cells_per_stage: int = 5) -> "str | None":
  """Why the lookup tables do not give this network's latency, or None when they apply.

  The tables hold per-operator times of NAS-Bench-201's C=16, N=5 network on 32x32 RGB input
  (``TABLE_NETWORK``); NAS-Bench-201's three datasets at their native sizes get them as they
  always have (ImageNet16-120 included). Any other input size, channel count, C or N gets no
  latency until the tables are scaled or measured at that size: a 32x32 number would be wrong.
  """
  from monas_jax import data
  native = data.IMAGE_SIZE.get(dataset)
  size_ok = image_size == 32 or (native is not None and image_size == native)
  if size_ok and image_channels == 3 and channels == 16 and cells_per_stage == 5:
    return None
  return (f"the latency tables are for {TABLE_NETWORK}; this network is C={channels}, "
          f"N={cells_per_stage} on {image_size}x{image_size}x{image_channels} input: no latency "
          "estimate is made (no scaled or measured table for that size yet)")


def config_table_unavailable(config) -> "str | None":
  """``table_unavailable`` for a search config (its dataset, image size and channels, and the
  deployed network of ``config.network``)."""
  from monas_jax import data
  net = config.get("network")
  return table_unavailable(config.dataset, data.image_size_of(config),
                           int(config.get("image_channels", 3)),
                           16 if net is None else int(net.channels),
                           5 if net is None else int(net.cells_per_stage))


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
  """Whether a cell deployed in int8 fits an MCU profile (cost model's memory estimates);
  ``dataset`` a name of data.DATASETS or a data.DataSpec, C = channels, N = cells_per_stage."""
  mem = memory.deployment_memory(arch, dataset, channels, cells_per_stage)
  return fits_memory(profile, mem["flash_bytes_int8"], mem["peak_sram_bytes_int8"])


def describe_fields(arch, dataset: str = "cifar10") -> dict[str, Any]:
  """Hardware fields of a cell for ``experiments.describe``.

  Returns:
    ``latency_ms``: {profile name: ms} for every built-in profile (tables are for the CIFAR-size
    32x32 input at batch 1, whatever ``dataset``); ``fits``: {MCU profile name: bool}, int8
    weights in flash and peak int8 activations in SRAM for ``dataset``'s input size.
  """
  a = space.to_arch(arch)
  mem = memory.deployment_memory(a, dataset)
  latency, fits = {}, {}
  for name in builtin_profiles():
    p = load_profile(name)
    latency[name] = estimate_ms(p, a)
    if p.kind == "mcu":
      fits[name] = fits_memory(p, mem["flash_bytes_int8"], mem["peak_sram_bytes_int8"])
  return {"latency_ms": latency, "fits": fits}
