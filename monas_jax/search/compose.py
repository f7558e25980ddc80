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
    weights: name -> weight (default 1 each; 0 leaves an indicator out).
    rule: 'log_rank' (AZ-NAS) or 'mean_rank' (MONAS Eq. 3).
  """
  if rule not in RULES:
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
  if not values:
    raise ValueError("compose needs at least one indicator")
  missing = [k for k in values if k not in higher_is_better]
  if missing:
    raise ValueError(f"no direction for indicator {missing[0]!r}")
  n = len(next(iter(values.values())))
  score = np.zeros(n)
  for name, v in values.items():
    w = 1.0 if weights is None else float(weights.get(name, 0.0))
    if w == 0.0:
      continue
    r = ranks(v, higher_is_better[name])
    score += w * (np.log(r / n) if rule == "log_rank" else (r - 1.0))
  return score
