"""The pruning search: state, ranking, budgets and the round function."""
from __future__ import annotations

import ml_collections

from monas_jax.proxies import indicators
from monas_jax.search import ranking
from monas_jax.search.budget import Budget, BudgetError, from_config as budget_from_config
from monas_jax.search.evaluate import BatchEvaluator, default_chunk_size
from monas_jax.search.loop import RoundSettings, candidates, run, search_round, SHORT
from monas_jax.search.state import SearchState, initial_state

__all__ = ["Budget", "BudgetError", "BatchEvaluator", "RoundSettings", "SearchState",
           "budget_from_config", "candidates", "default_chunk_size", "initial_state",
           "make_settings", "run", "search_round"]


_EVALUATORS: dict = {}


def _evaluator(config, name: str, images, source) -> tuple[BatchEvaluator, float]:
  """Compiled evaluators are cached per process by everything they depend on, so sweeps and
  tests over search weights and seeds compile once."""
  chunk = config.ntk.chunk_size or default_chunk_size()
  key = (name, config.dataset, config.ntk.to_json(), config.regions.to_json(),
         config.hardware.to_json(), chunk, source if source is not None else id(images))
  if key in _EVALUATORS:
    return _EVALUATORS[key], 0.0
  ind = indicators.make_indicators(config, (name,))[name]
  ev = _EVALUATORS[key] = BatchEvaluator(ind.fn, images, chunk)
  return ev, ev.compile_seconds


def make_settings(config: ml_collections.ConfigDict, images, source=None) -> RoundSettings:
  """Compiles the indicators a config needs and returns the round settings.

  K and R are evaluated when their weight (1 - lambda - mu) / 2 is positive; F and L always
  (they cost microseconds and every round records them). ``source`` names the images (as
  data.load_images does) so that compiled evaluators are reused across calls; the settings'
  ``compile_seconds`` counts only compiles done by this call.
  """
  s = config.search
  w = ranking.weights(s.flops_weight, s.latency_weight)
  names = [n for n in indicators.NAMES if n in ("flops", "latency") or w[SHORT[n]] > 0]
  built = {SHORT[n]: _evaluator(config, n, images, source) for n in names}
  return RoundSettings(
      evaluators={n: ev for n, (ev, _) in built.items()},
      compile_seconds=sum(c for _, c in built.values()), stochastic=frozenset({"K", "R"}), weights=w, repeats=s.repeats,
      precision=s.precision, prune_per_round=s.prune_per_round,
      init_per_round=config.ntk.init == "torch_default", budget=budget_from_config(config))
