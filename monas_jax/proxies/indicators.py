"""One signature for every indicator: ``fn(mask, data, key) -> scalar``.

``mask`` is a (6, 5) operator mask (single cell or supernet), ``data`` the training images as a
uint8 array (n, h, w, c) (c = the config's ``image_channels``) and ``key`` a PRNG key, split into a data key and an initialisation key
unless ``init_key`` is given (so a caller can keep the weights fixed while redrawing data); each function is pure and jit-able, and vmaps
over masks with the data and key shared (so every candidate of a search round sees the same
batch and the same initial weights). Indicators that need no data or key ignore them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from monas_jax import data, models, space
from monas_jax.proxies import cost, linear_regions, ntk

NAMES = ("ntk", "regions", "flops", "latency")


@dataclasses.dataclass(frozen=True)
class Indicator:
  """A named indicator. ``lower_is_better`` gives the direction of a better cell."""

  name: str
  fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
  lower_is_better: bool
  units: str


def _keys(key, init_key):
  k_data, k_init = jax.random.split(key)
  return k_data, (k_init if init_key is None else init_key)


def _template(net, x_shape):
  variables = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros(x_shape),
                             jnp.ones((space.NUM_EDGES, space.NUM_OPS)))
  return (jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), variables["params"]),
          jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), variables["batch_stats"]))


def ntk_indicator(config: ml_collections.ConfigDict, cond_index: int | None = None) -> Indicator:
  """K_i of the empirical NTK of the small supernet on one augmented batch (lower is better).

  Key use: ``key -> (batch key, init key)``.
  """
  spectrum = ntk_spectrum_fn(config)
  i = config.ntk.cond_index if cond_index is None else cond_index

  def fn(mask, images, key, init_key=None):
    return ntk.condition_number(spectrum(mask, images, key, init_key), i)

  return Indicator(f"K{i}", fn, lower_is_better=True, units="ratio")


def ntk_spectrum_fn(config: ml_collections.ConfigDict):
  """``fn(mask, images, key, init_key=None) -> eigenvalues (batch_size,)``, ascending.

  The spectrum behind every K_i (ntk_indicator takes one ratio of it; score_space keeps it all).
  """
  c = config.ntk
  ds = data.config_spec(config)
  net = models.Network(c.channels, c.cells_per_stage, ds.num_classes)
  params, stats = _template(net, (c.batch_size, ds.image_size, ds.image_size, ds.channels))
  # float64 eigenvalues of a float32 kernel would only be float32 digits: build it in float64.
  theta_fn = ntk.make_ntk_fn(net, params, stats, init=c.init, params=c.params,
                             dtype="float64" if c.eig_dtype == "float64" else None)

  def fn(mask, images, key, init_key=None):
    k_data, k_init = _keys(key, init_key)
    x = data.sample_batch(k_data, images, c.batch_size, ds)
    return ntk.eigenvalues(theta_fn(mask, x, k_init), c.eig_dtype)

  return fn


def regions_indicator(config: ml_collections.ConfigDict) -> Indicator:
  """Linear-region count of the width-1 single cell (higher is better)."""
  c = config.regions
  ds = data.config_spec(config)
  net = models.SingleCellNetwork(c.channels, ds.num_classes)
  params, stats = _template(net, (c.num_samples, c.crop, c.crop, c.channels))
  count_fn = linear_regions.make_region_fn(net, params, stats, init=c.init)

  def fn(mask, images, key, init_key=None):
    k_data, k_init = _keys(key, init_key)
    xs = jax.vmap(lambda k: data.region_inputs(k, images, ds, c.num_samples, c.crop))(
        jax.random.split(k_data, c.num_batches))
    return count_fn(mask, xs, k_init).astype(jnp.float32)

  return Indicator("R", fn, lower_is_better=False, units="regions")


def flops_indicator(config: ml_collections.ConfigDict) -> Indicator:
  """FLOPs (M per image) of the deployed network (``config.network``: C=16, N=5 by default) on
  the config's input, running the active operators."""
  table = cost.cost_table(data.config_spec(config), config.network.channels,
                          config.network.cells_per_stage)

  def fn(mask, images, key, init_key=None):
    del images, key, init_key
    return table.flops_M(mask)

  return Indicator("F", fn, lower_is_better=True, units="MFLOPs")


def latency_indicator(config: ml_collections.ConfigDict) -> Indicator:
  """Lookup-table latency (ms) of the configured hardware profile (Algorithm 1), for the
  config's input and network: the table itself where it was measured on that network, else its
  scaled estimate (``latency.config_profile``)."""
  from monas_jax.hardware import latency
  profile = latency.config_profile(config)

  def fn(mask, images, key, init_key=None):
    del images, key, init_key
    return latency.latency_ms(profile.arrays, mask)

  return Indicator("L", fn, lower_is_better=True, units="ms")


_BUILDERS = {"ntk": ntk_indicator, "regions": regions_indicator, "flops": flops_indicator,
             "latency": latency_indicator}


def make_indicators(config: ml_collections.ConfigDict, names=NAMES) -> dict[str, Indicator]:
  """Indicators by name (any subset of NAMES), all with the signature (mask, data, key)."""
  bad = [n for n in names if n not in _BUILDERS]
  if bad:
    raise ValueError(f"unknown indicator {bad[0]!r}; allowed: {', '.join(NAMES)}")
  return {n: _BUILDERS[n](config) for n in names}
