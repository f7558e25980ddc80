"""The pruning search: state, ranking, budgets and the round function."""
from __future__ import annotations

from absl import logging
import jax
import ml_collections

from monas_jax import data, space
from monas_jax.proxies import indicators
from monas_jax.search import ensemble, ranking
from monas_jax.search.budget import Budget, BudgetError, from_config as budget_from_config
from monas_jax.search.ensemble import EnsembleSettings
from monas_jax.search.evaluate import BatchEvaluator, default_chunk_size
from monas_jax.search import loop
from monas_jax.search.loop import RoundSettings, candidates, search_round, SHORT
from monas_jax.search.state import SearchState, initial_state

__all__ = ["Budget", "BudgetError", "BatchEvaluator", "EnsembleSettings", "RoundSettings",
           "SearchState", "budget_from_config", "candidates", "default_chunk_size", "excluded_ops",
           "initial_state", "make_settings", "run", "search_round"]


def run(state, settings, on_round=None, progress=None):
  """Runs the search of either mode to a single cell (see loop.run and ensemble.run)."""
  mod = ensemble if isinstance(settings, EnsembleSettings) else loop
  return mod.run(state, settings, on_round=on_round, progress=progress)


_EVALUATORS: dict = {}
_COMPILED: dict = {}


def _shapes(data_arg) -> tuple:
  return tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(data_arg))


def _cached(key: tuple, source, data_arg, build) -> tuple[BatchEvaluator, float]:
  """The evaluator of ``key`` (everything the compiled function depends on: names, settings,
  the DataSpec, whose dataset name is not part of its equality) over ``data_arg`` named
  ``source``; (evaluator, seconds this call spent compiling).

  Evaluators are cached per process by key and data, so sweeps and tests over search weights
  and seeds compile once; other data of the same shapes reuse the compiled function
  (``BatchEvaluator.with_images``) with a memo of their own.
  """
  ckey = key + (_shapes(data_arg),)
  ekey = ckey + (source if source is not None else id(data_arg),)
  if ekey in _EVALUATORS:
    return _EVALUATORS[ekey], 0.0
  if ckey in _COMPILED:
    ev, compile_s = _COMPILED[ckey].with_images(data_arg), 0.0
  else:
    ev = _COMPILED[ckey] = build()
    compile_s = ev.compile_seconds
  _EVALUATORS[ekey] = ev
  return ev, compile_s


def _evaluator(config, name: str, images, source) -> tuple[BatchEvaluator, float]:
  """The compiled evaluator of one indicator of mode monas (see ``_cached``)."""
  chunk = config.ntk.chunk_size or default_chunk_size()
  key = (name, data.config_spec(config), config.ntk.to_json(), config.regions.to_json(),
         config.network.to_json(), config.hardware.to_json(), chunk)

  def build():
    return BatchEvaluator(indicators.make_indicators(config, (name,))[name].fn, images, chunk)

  return _cached(key, source, images, build)


def refine_allowed(config: ml_collections.ConfigDict):
  """(6, 5) 0/1: the operators mode ensemble's local search may put on each edge
  (``config.ensemble.refine_ops``: 'search' = those the starting supernet holds
  (``excluded_ops``), 'all' = every operator, 'auto' = 'all' when the search weighs latency
  (mu > 0), else 'search')."""
  ops = config.ensemble.refine_ops
  if ops == "auto":
    ops = "all" if float(config.search.latency_weight) > 0 else "search"
  if ops == "all":
    return space.full_mask(())
  return space.full_mask(excluded_ops(config))


def excluded_ops(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Operators the starting supernet leaves out: ``search.exclude_ops``, except in mode ensemble
  (strategy 'cells') with a latency or memory budget and ``ensemble.budget_ops='auto'``: then
  none, so the search itself decides on every edge whether `none` stays (under a tight budget
  the best cells use `none` edges to afford convolutions elsewhere; under a loose one cells
  without them score higher and `none` is pruned)."""
  s, e = config.search, config.ensemble
  budget = s.latency_budget_ms is not None or bool(s.enforce_memory)
  if (s.mode == "ensemble" and e.strategy == "cells" and e.budget_ops == "auto" and budget):
    return ()
  return tuple(s.exclude_ops)


def _ensemble_settings(config, images, labels, source) -> EnsembleSettings:
  """Compiles the ensemble's indicators: one evaluator for every zero-cost proxy together (one
  call per mask), one for latency if it is weighted.

  The accuracy indicators keep their configured weights inside the accuracy composition; mu
  (latency) and lambda (FLOPs as a cost, lower is better) weigh against that one accuracy score
  (MONAS Eq. 3; ``ensemble.score``). FLOPs as an accuracy indicator (``ensemble.indicators``,
  higher is better, AZ-NAS's complexity term) is a separate term.
  """
  from monas_jax.proxies import zero_cost
  e, s = config.ensemble, config.search
  weights = {n: float(w) for n, w in zip(e.indicators, e.weights) if float(w) > 0}
  cost_weights = {"latency": float(s.latency_weight), "flops_cost": float(s.flops_weight)}
  names = tuple(weights)
  if cost_weights["flops_cost"] > 0 and "flops" not in names:
    names += ("flops",)  # the cost term's values; not an accuracy indicator then
  evaluators, compile_s = [], 0.0
  chunk = config.ntk.chunk_size or default_chunk_size()
  if chunk > 1 and jax.default_backend() == "cpu":
    # JAX 0.10.2's CPU LAPACK kernels split a batched svd/eigh onto XLA's intra-op pool and
    # block until the pieces are done; when such calls hold every pool thread, nothing runs the
    # pieces: a deadlock. AZ-NAS's batched svd/eigh at C=16 hit it with a chunk of 4 masks
    # (benchmarks/xla_repro_lapack_deadlock.py shows it without our code; RESULTS). A chunk of
    # 1 never splits, and one mask per call is also the fastest on CPUs.
    logging.warning("ntk.chunk_size=%d with mode ensemble on the CPU: batched LAPACK calls "
                    "(AZ-NAS's svd/eigh) can deadlock XLA:CPU's thread pool (a chunk of 4 masks "
                    "hung on this project's machines); ntk.chunk_size=1 (the CPU default) is "
                    "safe and faster", chunk)
  key = ("ensemble", names, data.config_spec(config), config.zc.to_json(),
         config.network.to_json(), chunk)
  data_arg = (images, labels) if labels is not None else images
  ev, c = _cached(key, source, data_arg,
                  lambda: BatchEvaluator(zero_cost.proxy_fn(config, names), data_arg, chunk))
  compile_s += c
  evaluators.append((names, ev))
  dirs = {n: zero_cost.HIGHER_IS_BETTER[n] for n in weights}
  rerank = ()
  if e.rerank_top:  # opt-in: compiled only then (VKDNW's compile alone takes minutes on a CPU)
    rnames = tuple(e.rerank_indicators)
    ev, c = _cached(("ensemble-rerank", rnames) + key[2:], source, data_arg,
                    lambda: BatchEvaluator(zero_cost.proxy_fn(config, rnames), data_arg, chunk))
    compile_s += c
    rerank = ((rnames, ev),)
    dirs.update({n: zero_cost.HIGHER_IS_BETTER[n] for n in rnames})
  if cost_weights["latency"] > 0:
    ev, c = _evaluator(config, "latency", images, source)
    evaluators.append((("latency",), ev))
    compile_s += c
  return EnsembleSettings(
      evaluators=tuple(evaluators), directions=dirs, weights=weights, rule=e.rule,
      repeats=e.repeats, final_cells=e.final_cells, prune_per_round=s.prune_per_round,
      budget=budget_from_config(config), compile_seconds=compile_s,
      refine_steps=e.refine_steps, feasible_weight=float(e.budget_weight),
      allowed=refine_allowed(config), cost_weights=cost_weights, strategy=e.strategy,
      cells_per_round=e.cells_per_round, top_fraction=float(e.top_fraction), rerank=rerank,
      rerank_top=e.rerank_top)


def make_settings(config: ml_collections.ConfigDict, images, source=None, labels=None):
  """Compiles the indicators a config needs and returns the round settings.

  K and R are evaluated when their weight (1 - lambda - mu) / 2 is positive; F and L always
  (they cost microseconds and every round records them); L is the profile's table for the
  config's network, scaled where it was measured on another (``latency.config_profile``).
  ``source`` names the images (as
  data.load_images does) so that compiled evaluators are reused across calls; the settings'
  ``compile_seconds`` counts only compiles done by this call. Mode 'ensemble' returns
  EnsembleSettings (``labels`` are needed when a label proxy is in the ensemble).
  """
  if config.search.mode == "ensemble":
    return _ensemble_settings(config, images, labels, source)
  s = config.search
  w = ranking.weights(s.flops_weight, s.latency_weight)
  names = [n for n in indicators.NAMES if n in ("flops", "latency") or w[SHORT[n]] > 0]
  built = {SHORT[n]: _evaluator(config, n, images, source) for n in names}
  return RoundSettings(
      evaluators={n: ev for n, (ev, _) in built.items()},
      compile_seconds=sum(c for _, c in built.values()), stochastic=frozenset({"K", "R"}), weights=w, repeats=s.repeats,
      precision=s.precision, prune_per_round=s.prune_per_round,
      init_per_round=config.ntk.init == "torch_default", budget=budget_from_config(config))
