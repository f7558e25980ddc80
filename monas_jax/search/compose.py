"""Composing indicators into one score (pure numpy, any set of indicators by config).

Two rules, each with a per-indicator direction and weight:

- ``mean_rank``: the paper's Eq. 3, sum_i w_i * rank_i with ranks from 0 (worst) to N-1.
- ``log_rank``: AZ-NAS's non-linear aggregation, sum_i w_i * log(rank_i / N) with ranks from
  1 (worst) to N (best): a weighted product of rank fractions, so one bad indicator pulls a
  candidate down hard.

Ranks are fractional (scipy's 'average' for ties), so candidates that differ in any indicator
get different ranks; higher composed score = better candidate in both rules.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import stats

RULES = ("mean_rank", "log_rank")


def ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
  """(n,) -> (n,) float ranks, 1 = worst ... n = best; ties get their average rank.

  NaN counts as the worst value (below -inf).
  """
  v = np.asarray(values, np.float64)
  v = v if higher_is_better else -v
  v = np.where(np.isnan(v), -np.inf, v)
  # rankdata cannot order several -inf apart from NaN; they tie at the bottom, as they should.
  return stats.rankdata(v, method="average")


def compose(values: Mapping[str, np.ndarray], higher_is_better: Mapping[str, bool],
            weights: Mapping[str, float] | None = None, rule: str = "log_rank") -> np.ndarray:
  """Composed score (n,) of n candidates from indicator values {name: (n,)}; higher is better.

  Args:
    values: indicator name -> (n,) raw values.
    higher_is_better: name -> direction (every name of ``values`` must have one).
    weights: name -> weight (None: 1 each; a name missing from the map also weighs 1; 0 leaves
      an indicator out).
    rule: 'log_rank' (AZ-NAS) or 'mean_rank' (MONAS Eq. 3).
  Raises ValueError for an unknown rule, no indicator, a missing direction, a weight for an
  indicator not given, or value arrays of different lengths.
  """
  if rule not in RULES:
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
  if not values:
    raise ValueError("compose needs at least one indicator")
  missing = [k for k in values if k not in higher_is_better]
  if missing:
    raise ValueError(f"no direction for indicator {missing[0]!r}")
  stray = [k for k in (weights or {}) if k not in values]
  if stray:
    raise ValueError(f"weight given for indicator {stray[0]!r}, which has no values")
  lengths = {k: len(v) for k, v in values.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"indicator values differ in length: {lengths}")
  n = len(next(iter(values.values())))
  score = np.zeros(n)
  for name, v in values.items():
    w = 1.0 if weights is None else float(weights.get(name, 1.0))
    if w == 0.0:
      continue
    r = ranks(v, higher_is_better[name])
    score += w * (np.log(r / n) if rule == "log_rank" else (r - 1.0))
  return score


def hardware_aware(accuracy: np.ndarray, costs: Mapping[str, np.ndarray],
                   weights: Mapping[str, float]) -> np.ndarray:
  """MONAS Eq. 3 with one accuracy score: (1 - sum(w)) * rank(accuracy) + sum_c w_c * rank(c).

  ``accuracy`` (n,) is higher-is-better (e.g. the composed zero-cost score); each cost (n,) in
  ``costs`` (latency ms, FLOPs M) is lower-is-better and weighs ``weights[name]`` (mu, lambda).
  Fractional ranks from 0 (worst) to n - 1 (best), as ``mean_rank``; higher is better. With every
  weight 0 the order is the accuracy's. So mu and lambda weigh latency and FLOPs against the
  accuracy estimate as a whole, however many indicators it composes.
  """
  w = {k: float(weights.get(k, 0.0)) for k in costs}
  if any(v < 0 for v in w.values()) or sum(w.values()) > 1.0:
    raise ValueError(f"cost weights must be >= 0 and sum to at most 1, got {w}")
  if "accuracy" in costs:
    raise ValueError("a cost may not be named 'accuracy'")
  values = {"accuracy": np.asarray(accuracy), **{k: np.asarray(v) for k, v in costs.items()}}
  directions = {"accuracy": True, **{k: False for k in costs}}
  return compose(values, directions, {"accuracy": 1.0 - sum(w.values()), **w}, "mean_rank")
