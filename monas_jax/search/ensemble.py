"""Search mode 'ensemble': pruning on a composed zero-cost score, then ranking cells directly.

Round t (while the supernet holds more than ``final_cells`` single-path cells): every active
operator on an edge with a choice is a candidate; each candidate supernet (the current one
without it) is scored with every ensemble indicator on the C=16, N=5 benchmark network, the
candidates are ranked per indicator (fractional ranks, so any difference counts) and composed
(``compose.compose``: AZ-NAS's log-rank sum by default, weights per indicator, latency weighted
by mu); on every edge the operator whose removal leaves the best-scored supernet is pruned.

Final round (at most ``final_cells`` cells within the budget left, so a tight budget reaches
the direct ranking earlier, with as many feasible cells): every remaining cell within the
budget is scored as its own network and the best composed cell is the result. The indicators
were validated on single cells (benchmarks/RESULTS.md), so the last choice is made where they
rank best. Then up to ``refine_steps`` steps of local search: the best cell's one-edge
neighbours (any allowed operator, within the budget) that are not yet scored join the pool,
scored with the same round key (so their values are those they would have had in the first
batch), and the pool is ranked again; it stops when the best cell stays. Pruning on supernets
removes operators (skip, pooling) that the indicators rate well only in single cells; this
step can bring them back.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import space
from monas_jax.search import compose
from monas_jax.search.budget import Budget
from monas_jax.search.loop import candidate_masks, candidates
from monas_jax.search.state import SearchState


@dataclasses.dataclass(frozen=True)
class EnsembleSettings:
  """What an ensemble round needs besides the state.

  evaluators: list of (indicator names, ``eval(masks (m, 6, 5), key, init_key) -> (m, k)``).
  directions: indicator -> higher is better.
  weights: indicator -> weight in the composition.
  """

  evaluators: tuple
  directions: Mapping[str, bool]
  weights: Mapping[str, float]
  rule: str = "log_rank"
  repeats: int = 1
  final_cells: int = 64
  prune_per_round: int = 1
  budget: Optional[Budget] = None
  compile_seconds: float = 0.0
  refine_steps: int = 0
  # With a budget, prune rounds also rank each candidate by how many of its cells meet the
  # budget (more is better), with this weight (config.ensemble.budget_weight).
  feasible_weight: float = 0.5
  allowed: Optional[np.ndarray] = None  # (6, 5) 0/1: operators cells may use (default: all)

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(n for names, _ in self.evaluators for n in names)


def _values(masks: np.ndarray, settings: EnsembleSettings, round_key,
            progress=None, round_no=0) -> dict[str, np.ndarray]:
  """indicator -> (m,) values of each mask, averaged over repeats (fresh data and weights)."""
  out = {}
  for names, ev in settings.evaluators:
    rows = []
    for r in range(settings.repeats):
      k = jax.random.fold_in(round_key, r)
      kwargs = {}
      if progress:
        kwargs["on_chunk"] = (lambda d, t, r=r, names=names: progress(
            round=round_no, indicator="+".join(names), repeat=r + 1, repeats=settings.repeats,
            done=d, total=t))
      rows.append(np.asarray(ev(masks, k, jax.random.split(k)[1], **kwargs)).reshape(
          len(masks), len(names)))
    v = np.mean(np.stack(rows), axis=0)
    out.update({n: v[:, i] for i, n in enumerate(names)})
  return out


def _score(values: dict[str, np.ndarray], settings: EnsembleSettings) -> np.ndarray:
  return compose.compose(values, settings.directions, settings.weights, settings.rule)


def prune_round(state: SearchState, settings: EnsembleSettings, progress=None) -> SearchState:
  """One pruning round on the composed score (pure in state and settings)."""
  mask = np.asarray(state.mask, np.float32)
  cands = candidates(mask)
  masks = candidate_masks(mask, cands)
  key = jax.random.wrap_key_data(jnp.asarray(state.key, jnp.uint32))
  round_key, next_key = jax.random.split(key)
  values = _values(masks, settings, round_key, progress, state.round + 1)
  weights = dict(settings.weights)
  directions = dict(settings.directions)
  if settings.budget is not None and settings.budget.active:
    # A candidate keeps the current cells within the budget that do not use its operator.
    ok = settings.budget.within(mask)
    values["feasible"] = np.array([np.sum(ok[:, e] != o) for e, o in cands], np.float64)
    weights["feasible"], directions["feasible"] = settings.feasible_weight, True
  score = compose.compose(values, directions, weights, settings.rule)
  chosen, work = [], mask.copy()
  for e in range(space.NUM_EDGES):
    idx = sorted((i for i, (ce, _) in enumerate(cands) if ce == e), key=lambda i: (-score[i], i))
    n_prune = min(settings.prune_per_round, len(idx) - 1)
    for i in idx:
      if n_prune <= 0:
        break
      trial = work.copy()
      trial[cands[i]] = 0.0
      if settings.budget is not None and not settings.budget.feasible(trial):
        continue  # this prune would lose every cell that meets the budget
      work, n_prune = trial, n_prune - 1
      chosen.append(i)
  table = [{"edge": e, "op": space.OPS[o], "score": float(score[i]), "pruned": i in chosen,
            **{f"value_{n}": float(values[n][i]) for n in values}}
           for i, (e, o) in enumerate(cands)]
  record = {"round": state.round + 1, "kind": "prune", "mask_before": mask.astype(int).tolist(),
            "mask_after": work.astype(int).tolist(), "indicators": list(values),
            "weights": weights, "rule": settings.rule, "candidates": table,
            "pruned": [{"edge": cands[i][0], "op": space.OPS[cands[i][1]]} for i in sorted(chosen)]}
  return state.replace(mask=work, round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


def _neighbours(cell: tuple, allowed: np.ndarray) -> list[tuple]:
  """Cells that differ from ``cell`` (6 op indices) on exactly one edge, using allowed ops."""
  out = []
  for e in range(space.NUM_EDGES):
    for o in np.flatnonzero(allowed[e]):
      if o != cell[e]:
        out.append(cell[:e] + (int(o),) + cell[e + 1:])
  return out


def _scorable(mask, settings: EnsembleSettings) -> np.ndarray:
  """(m, 6) the single-path cells inside ``mask`` that the final round scores (within the
  budget)."""
  if settings.budget is None:
    return np.array(space.single_path_ops(mask), np.int64)
  return np.asarray(settings.budget.within(mask), np.int64)


def final_round(state: SearchState, settings: EnsembleSettings, progress=None) -> SearchState:
  """Scores every remaining single-path cell (within the budget), refines the best by local
  search (``settings.refine_steps``) and keeps the best one."""
  mask = np.asarray(state.mask, np.float32)
  ops = _scorable(mask, settings)
  eye = np.eye(space.NUM_OPS, dtype=np.float32)
  key = jax.random.wrap_key_data(jnp.asarray(state.key, jnp.uint32))
  round_key, next_key = jax.random.split(key)
  values = _values(eye[ops], settings, round_key, progress, state.round + 1)
  step = [0] * len(ops)
  score = _score(values, settings)
  best = int(np.argmax(score))  # first of equals: deterministic
  allowed = (np.ones((space.NUM_EDGES, space.NUM_OPS), bool) if settings.allowed is None
             else np.asarray(settings.allowed, bool))
  for t in range(1, settings.refine_steps + 1):
    seen = {tuple(o) for o in ops.tolist()}
    new = [c for c in _neighbours(tuple(ops[best].tolist()), allowed) if c not in seen]
    new = np.array(new, np.int64).reshape(-1, space.NUM_EDGES)
    if settings.budget is not None:
      new = new[settings.budget.meets(new)]
    if not len(new):
      break
    more = _values(eye[new], settings, round_key, progress, state.round + 1)
    values = {n: np.concatenate([values[n], more[n]]) for n in values}
    ops = np.concatenate([ops, new])
    step += [t] * len(new)
    score = _score(values, settings)
    prev, best = best, int(np.argmax(score))
    if best == prev:
      break
  table = [{"arch_str": space.ops_to_arch_str(tuple(o)), "score": float(score[i]),
            "chosen": i == best, "step": step[i],
            **{f"value_{n}": float(values[n][i]) for n in values}}
           for i, o in enumerate(ops)]
  record = {"round": state.round + 1, "kind": "final", "mask_before": mask.astype(int).tolist(),
            "mask_after": eye[ops[best]].astype(int).tolist(), "indicators": list(values),
            "weights": dict(settings.weights), "rule": settings.rule, "cells": table,
            "refine_steps": max(step), "pruned": []}
  return state.replace(mask=eye[ops[best]], round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


def run(state: SearchState, settings: EnsembleSettings,
        on_round: Optional[Callable[[SearchState], None]] = None,
        progress: Optional[Callable[..., None]] = None) -> SearchState:
  """Prune rounds until at most ``final_cells`` cells (within the budget) remain, then the
  final ranking."""
  if settings.budget is not None:
    settings.budget.check_reachable(state.mask)
  while not state.done:
    if len(_scorable(state.mask, settings)) <= settings.final_cells:
      state = final_round(state, settings, progress)
    else:
      state = prune_round(state, settings, progress)
    if on_round:
      on_round(state)
  return state
