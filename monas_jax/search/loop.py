"""Hardware-aware pruning search (MONAS Algorithm 2): one round is ``state -> state``.

Round t: every active operator on every edge with more than one active operator is a
candidate; the candidate supernet lacks it. For each indicator X, delta_X = (X(current) -
X(candidate)) / X(current), rounded to ``precision`` decimals and averaged over ``repeats``
fresh draws of data (and weights). All candidates of the round are ranked together (dense
ranks from 0), scored by the weighted mean of ranks, and on every edge the lowest-scored
operator is pruned. The current supernet's indicators are computed once per round and repeat,
in the same batch as the candidates.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space
from monas_jax.search import ranking
from monas_jax.search.budget import Budget
from monas_jax.search.state import SearchState

# Indicator short names as ranked (K, R, F, L) and the config names that produce them.
SHORT = {"ntk": "K", "regions": "R", "flops": "F", "latency": "L"}


@dataclasses.dataclass(frozen=True)
class RoundSettings:
  """What one round needs besides the state.

  evaluators: short name (K, R, F, L) -> ``eval(masks (m, 6, 5), key, init_key) -> (m,)``.
  stochastic: short names whose value depends on the key (averaged over repeats).
  init_per_round: keep the weights of a round fixed across repeats (reference code) instead
    of redrawing them each repeat (TE-NAS's intent).
  """

  evaluators: Mapping[str, Callable]
  stochastic: frozenset
  weights: Mapping[str, float]
  repeats: int = 3
  precision: int = 3
  prune_per_round: int = 1
  init_per_round: bool = False
  budget: Optional[Budget] = None
  compile_seconds: float = 0.0


def candidates(mask: np.ndarray) -> list[tuple[int, int]]:
  """(edge, op) of every active operator on an edge that still has a choice, in edge-op order."""
  m = np.asarray(mask) > 0
  return [(e, o) for e in range(space.NUM_EDGES) if m[e].sum() > 1
          for o in range(space.NUM_OPS) if m[e, o]]


def candidate_masks(mask: np.ndarray, cands) -> np.ndarray:
  """(m, 6, 5): the current mask without each candidate's operator."""
  out = np.repeat(np.asarray(mask, np.float32)[None], len(cands), axis=0)
  for i, (e, o) in enumerate(cands):
    out[i, e, o] = 0.0
  return out


def search_round(state: SearchState, settings: RoundSettings,
                 progress: Optional[Callable[..., None]] = None) -> SearchState:
  """One pruning round. Pure in (state, settings): the same inputs give the same next state.

  ``progress(round=, indicator=, repeat=, repeats=, done=, total=)``, if given, is called after
  every evaluated chunk of masks.
  """
  mask = np.asarray(state.mask, np.float32)
  cands = candidates(mask)
  if not cands:
    return state
  masks = np.concatenate([mask[None], candidate_masks(mask, cands)])  # current first
  key = jax.random.wrap_key_data(jnp.asarray(state.key, jnp.uint32))
  round_key, next_key = jax.random.split(key)
  values = {}  # short name -> (repeats, 1 + m)
  for name, ev in settings.evaluators.items():
    reps = settings.repeats if name in settings.stochastic else 1
    rows = []
    for r in range(reps):
      k = jax.random.fold_in(round_key, r)
      init_key = jax.random.fold_in(round_key, 10_000) if settings.init_per_round else (
          jax.random.split(k)[1])
      if progress:
        hook = (lambda d, t, name=name, r=r, reps=reps: progress(
            round=state.round + 1, indicator=name, repeat=r + 1, repeats=reps, done=d, total=t))
        rows.append(ev(masks, k, init_key, on_chunk=hook))
      else:
        rows.append(ev(masks, k, init_key))
    values[name] = np.stack(rows)
  deltas = {n: ranking.relative_delta(v[:, 0], v[:, 1:], settings.precision)
            for n, v in values.items()}
  ranks = {n: ranking.dense_rank(d, ranking.DESCENDING[n]) for n, d in deltas.items()}
  score = ranking.scores({n: r for n, r in ranks.items() if n in settings.weights},
                         settings.weights)
  pruned = _choose(mask, cands, score, settings)
  new_mask = mask.copy()
  for i in pruned:
    new_mask[cands[i]] = 0.0
  table = []
  for i, (e, o) in enumerate(cands):
    row = {"edge": e, "op": space.OPS[o], "score": float(score[i]), "pruned": i in pruned}
    for n in deltas:
      row[f"value_{n}"] = float(values[n][:, 1 + i].mean())  # mean over repeats
      row[f"delta_{n}"] = float(deltas[n][i])
      row[f"rank_{n}"] = int(ranks[n][i])
    table.append(row)
  record = {
      "round": state.round + 1,
      "mask_before": mask.astype(int).tolist(),
      "mask_after": new_mask.astype(int).tolist(),
      "kind": "prune",
      "indicators": list(values),
      "weights": dict(settings.weights),
      "current": {n: [float(x) for x in v[:, 0]] for n, v in values.items()},
      "candidates": table,
      "pruned": [{"edge": cands[i][0], "op": space.OPS[cands[i][1]]} for i in sorted(pruned)],
  }
  return state.replace(mask=new_mask, round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


def _choose(mask, cands, score, settings: RoundSettings) -> list[int]:
  """Candidates to prune: per edge the lowest scores (stable), keeping the budget reachable."""
  chosen = []
  work = mask.copy()
  for e in range(space.NUM_EDGES):
    idx = [i for i, (ce, _) in enumerate(cands) if ce == e]
    if not idx:
      continue
    order = sorted(idx, key=lambda i: (score[i], i))
    n_prune = min(settings.prune_per_round, len(idx) - 1)
    for i in order:
      if n_prune == 0:
        break
      trial = work.copy()
      trial[cands[i]] = 0.0
      if settings.budget is not None and not settings.budget.feasible(trial):
        continue  # pruning this operator would lose every cell that meets the budget
      work = trial
      chosen.append(i)
      n_prune -= 1
  return chosen


def run(state: SearchState, settings: RoundSettings,
        on_round: Optional[Callable[[SearchState], None]] = None,
        progress: Optional[Callable[..., None]] = None) -> SearchState:
  """Rounds until a single path; ``on_round`` sees every new state (checkpointing)."""
  if settings.budget is not None:
    settings.budget.check_reachable(state.mask)
  while not state.done:
    state = search_round(state, settings, progress)
    if on_round:
      on_round(state)
  return state
