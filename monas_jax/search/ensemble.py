"""Search mode 'ensemble': composed zero-cost scores of single cells decide the search.

Scores. The accuracy indicators (``weights``) are composed into one accuracy score
(``compose.compose``: AZ-NAS's log-rank sum by default); with latency or FLOPs weighted, MONAS's
Eq. 3 then weighs that one accuracy rank against the cost ranks (``compose.hardware_aware``:
``(1 - mu - lambda) * rank(accuracy) + mu * rank(-latency) + lambda * rank(-FLOPs)``), so mu and
lambda mean what they mean in mode monas, however many indicators the ensemble holds.

Strategy 'cells' (default). The indicators were validated on single cells
(benchmarks/RESULTS.md), so the search compares single cells from the first round. Every cell
is scored once, with one key for the whole search (a cell's values do not depend on the round
that drew it), and joins the archive. A prune round draws ``cells_per_round`` new cells inside
the current supernet (within the budget), composes the score over the archive's cells inside it,
and on every edge prunes the operator whose best cells (the ``top_fraction`` of its cells) score
lowest: removing it loses the least. The draw is balanced (every operator of an edge about
equally often). Once at most ``final_cells`` cells (within the budget) remain, they are all
scored and the best cell of the whole archive is refined by local search: its one-edge
neighbours (allowed operators, within the budget) join the archive until the best cell stays or
``refine_steps`` steps are done. With ``rerank_top`` (opt-in), the ``rerank_top`` best cells are
then scored with the ``rerank`` evaluators too and the pick is recomposed inside them, the
accuracy composition plus the re-rank indicators (weight 1 each). Every evaluated cell is
recorded with its indicator values.

Strategy 'supernet' (the earlier search, kept for comparison): prune rounds score candidate
*supernets* (the current one without each operator) with the indicators, then the final round
ranks the remaining cells as above. Scoring supernets drops pooling and skip on every edge
before single cells are compared (every indicator rewards convolutions in a supernet).
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
  weights: accuracy indicator -> weight in the accuracy composition (``rule``).
  cost_weights: cost term -> weight in Eq. 3 ('latency': mu, 'flops_cost': lambda); the values
    of 'flops_cost' are those of the 'flops' indicator, lower is better.
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
  cost_weights: Mapping[str, float] = dataclasses.field(default_factory=dict)
  strategy: str = "cells"
  cells_per_round: int = 32
  top_fraction: float = 0.25
  # Opt-in final re-rank (config.ensemble.rerank_top): evaluators as ``evaluators`` whose
  # indicators (directions in ``directions``) join the accuracy composition, weight 1 each,
  # inside the final round's rerank_top best cells.
  rerank: tuple = ()
  rerank_top: int = 0

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(n for names, _ in self.evaluators for n in names)


def _values(masks: np.ndarray, settings: EnsembleSettings, round_key,
            progress=None, round_no=0, evaluators=None) -> dict[str, np.ndarray]:
  """indicator -> (m,) values of each mask, averaged over repeats (fresh data and weights), of
  ``evaluators`` (default: the settings' own)."""
  out = {}
  for names, ev in (settings.evaluators if evaluators is None else evaluators):
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


# Where each cost term of Eq. 3 takes its values from.
COST_SOURCE = {"latency": "latency", "flops_cost": "flops"}


def score(values: Mapping[str, np.ndarray], settings: EnsembleSettings,
          extra: Optional[Mapping[str, tuple[float, bool]]] = None) -> np.ndarray:
  """(n,) composed score of n cells or candidates, higher is better: the accuracy composition
  of ``settings.weights``, then Eq. 3 with the cost weights (module docstring). ``extra``:
  name -> (weight, higher is better) of further terms of the accuracy composition (the
  supernet strategy's budget term)."""
  weights, dirs = dict(settings.weights), dict(settings.directions)
  for n, (w, d) in (extra or {}).items():
    weights[n], dirs[n] = w, d
  acc = compose.compose({n: values[n] for n in weights}, dirs, weights, settings.rule)
  costs = {c: values[COST_SOURCE[c]] for c, w in settings.cost_weights.items() if w > 0}
  if not costs:
    return acc
  return compose.hardware_aware(acc, costs, settings.cost_weights)


def _prune(mask: np.ndarray, cands, order: np.ndarray, settings: EnsembleSettings):
  """On every edge, prunes ``settings.prune_per_round`` candidates (edge, op) in ascending
  ``order`` (ties: candidate order), never the last operator of an edge, and skips a prune that
  would lose every cell within the budget. Returns (chosen candidate indices, new mask)."""
  chosen, work = [], mask.copy()
  for e in range(space.NUM_EDGES):
    idx = sorted((i for i, (ce, _) in enumerate(cands) if ce == e), key=lambda i: (order[i], i))
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
  return chosen, work


def prune_round(state: SearchState, settings: EnsembleSettings, progress=None) -> SearchState:
  """One pruning round on the composed score (pure in state and settings)."""
  mask = np.asarray(state.mask, np.float32)
  cands = candidates(mask)
  masks = candidate_masks(mask, cands)
  round_key, next_key = _keys(state)
  values = _values(masks, settings, round_key, progress, state.round + 1)
  extra = {}
  if settings.budget is not None and settings.budget.active:
    # A candidate keeps the current cells within the budget that do not use its operator.
    ok = settings.budget.within(mask)
    values["feasible"] = np.array([np.sum(ok[:, e] != o) for e, o in cands], np.float64)
    extra["feasible"] = (settings.feasible_weight, True)
  score_ = score(values, settings, extra)
  # Prune first the candidate whose removal leaves the best-scored supernet.
  chosen, work = _prune(mask, cands, -np.asarray(score_), settings)
  table = [{"edge": e, "op": space.OPS[o], "score": float(score_[i]), "pruned": i in chosen,
            **{f"value_{n}": float(values[n][i]) for n in values}}
           for i, (e, o) in enumerate(cands)]
  record = {"round": state.round + 1, "kind": "prune", "mask_before": mask.astype(int).tolist(),
            "mask_after": work.astype(int).tolist(), "indicators": list(values),
            **_weights_record(settings, extra), "candidates": table,
            "pruned": [{"edge": cands[i][0], "op": space.OPS[cands[i][1]]} for i in sorted(chosen)]}
  return state.replace(mask=work, round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


def _weights_record(settings: EnsembleSettings, extra=None) -> dict:
  """How a round composed its score, for its record."""
  w = dict(settings.weights)
  w.update({n: wt for n, (wt, _) in (extra or {}).items()})
  return {"weights": w, "cost_weights": dict(settings.cost_weights), "rule": settings.rule}


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
    return np.array(space.single_path_ops(mask), np.int64).reshape(-1, space.NUM_EDGES)
  return np.asarray(settings.budget.within(mask), np.int64).reshape(-1, space.NUM_EDGES)


def _keys(state: SearchState):
  key = jax.random.wrap_key_data(jnp.asarray(state.key, jnp.uint32))
  return jax.random.split(key)


def _key_data(key) -> list[int]:
  return np.asarray(jax.random.key_data(key)).astype(np.uint32).tolist()


def _cell_key(state: SearchState, round_key) -> tuple[jax.Array, dict]:
  """The key every cell of a 'cells' search is scored with: the first round's key, recorded in
  its history so later rounds and resumed runs score with the same one. Returns the key and
  what this round's record must add ({"cell_key": ...} in the first round, else {})."""
  for rec in state.history:
    if "cell_key" in rec:
      return jax.random.wrap_key_data(jnp.asarray(rec["cell_key"], jnp.uint32)), {}
  return round_key, {"cell_key": _key_data(round_key)}


def archive(history) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Every cell a search evaluated so far, from its round records: ((k, 6) op indices,
  indicator -> (k,) values), in evaluation order."""
  ops, rows = [], []
  for rec in history:
    for c in rec.get("evaluated", ()):
      ops.append(space.parse_arch_str(c["arch_str"]))
      rows.append({k[6:]: v for k, v in c.items() if k.startswith("value_")})
  names = list(rows[0]) if rows else []
  return (np.array(ops, np.int64).reshape(-1, space.NUM_EDGES),
          {n: np.array([r[n] for r in rows], np.float64) for n in names})


def _evaluate(ops: np.ndarray, settings, key, progress, round_no,
              evaluators=None) -> dict[str, np.ndarray]:
  """``_values`` of the cells ``ops`` (k, 6) (operator indices)."""
  eye = np.eye(space.NUM_OPS, dtype=np.float32)
  return _values(eye[ops], settings, key, progress, round_no, evaluators)


def _cell_rows(ops: np.ndarray, values, **cols) -> list[dict]:
  """One JSON-able row per cell: arch string, the given per-cell columns and every value."""
  return [{"arch_str": space.ops_to_arch_str(tuple(o)),
           **{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()},
           **{f"value_{n}": float(values[n][i]) for n in values}}
          for i, o in enumerate(ops.tolist())]


def _concat(a: dict, b: dict) -> dict:
  """Values of two lists of cells, one after the other (either may be empty)."""
  if not a or not b:
    return dict(a or b)
  return {n: np.concatenate([a[n], b[n]]) for n in b}


def _unseen(ops: np.ndarray, seen) -> np.ndarray:
  keep = [i for i, o in enumerate(ops.tolist()) if tuple(o) not in seen]
  return ops[keep].reshape(-1, space.NUM_EDGES)


def balanced_draw(cells: np.ndarray, mask: np.ndarray, count: int,
                  rng: np.random.Generator, cover: bool = False) -> np.ndarray:
  """Up to ``count`` distinct rows of ``cells`` (m, 6), drawn so that every active operator of
  each edge of ``mask`` appears about equally often (each edge's column of a balanced design is
  a random permutation of its operators repeated). Design rows not in ``cells`` are replaced by
  uniform draws from the rest, or with ``cover`` by a cell that uses the (edge, operator) pair
  drawn least so far (ties at random; pairs no remaining cell uses are skipped). Balance keeps
  the per-operator comparisons of a round fair; ``cover`` keeps it under a budget, where most
  design rows break the budget and uniform draws from the cells within it would leave costly
  operators (a 3x3 convolution at 10 ms) with no cell at all, to be pruned unseen."""
  count = min(count, len(cells))
  index = {tuple(c): i for i, c in enumerate(cells.tolist())}
  design = []
  for e in range(space.NUM_EDGES):
    ops = np.flatnonzero(mask[e] > 0)
    col = np.resize(ops, count)
    design.append(rng.permutation(col))
  chosen = []
  for row in np.stack(design, axis=1).tolist() if count else []:
    i = index.get(tuple(row))
    if i is not None and i not in chosen:
      chosen.append(i)
  rest = np.setdiff1d(np.arange(len(cells)), chosen)
  if cover:
    chosen += _cover_fill(cells, chosen, rest, count - len(chosen), rng)
    fill = []
  else:
    fill = rng.choice(rest, count - len(chosen), replace=False) if count > len(chosen) else []
  return cells[np.sort(np.concatenate([np.asarray(chosen, np.int64),
                                       np.asarray(fill, np.int64)]))]


def _cover_fill(cells: np.ndarray, chosen: list, rest: np.ndarray, n: int,
                rng: np.random.Generator) -> list:
  """``n`` indices from ``rest``, each a random cell using the (edge, op) pair of ``cells``
  that the chosen ones use least (ties broken at random)."""
  counts = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  for c in cells[chosen].tolist():
    counts[np.arange(space.NUM_EDGES), c] += 1
  rest, out = list(rest), []
  for _ in range(max(n, 0)):
    avail = cells[rest]
    used = np.zeros((space.NUM_EDGES, space.NUM_OPS), bool)
    used[np.repeat(np.arange(space.NUM_EDGES), len(avail)), avail.T.ravel()] = True
    pairs = np.argwhere(used)
    low = counts[pairs[:, 0], pairs[:, 1]]
    e, o = pairs[rng.choice(np.flatnonzero(low == low.min()))]
    j = rest.pop(int(rng.choice(np.flatnonzero(avail[:, e] == o))))
    counts[np.arange(space.NUM_EDGES), cells[j]] += 1
    out.append(j)
  return out


def cell_round(state: SearchState, settings: EnsembleSettings, progress=None) -> SearchState:
  """One prune round of strategy 'cells' (pure in state and settings): draws new single cells
  inside the current supernet, scores the archive's cells inside it and prunes, on every edge,
  the operator whose best cells (``top_fraction`` of them) score lowest."""
  mask = np.asarray(state.mask, np.float32)
  round_key, next_key = _keys(state)
  cell_key, key_record = _cell_key(state, round_key)
  old_ops, old_values = archive(state.history)
  seen = {tuple(o) for o in old_ops.tolist()}
  fresh = _unseen(_scorable(mask, settings), seen)
  rng = np.random.default_rng(_key_data(round_key))
  new = balanced_draw(fresh, mask, settings.cells_per_round, rng,
                      cover=settings.budget is not None and settings.budget.active)
  take = len(new)
  values = (_evaluate(new, settings, cell_key, progress, state.round + 1) if take
            else {n: np.zeros(0) for n in old_values})
  ops, all_values = np.concatenate([old_ops, new]), _concat(old_values, values)
  # Every archived cell was drawn (or refined) within the budget, so inside the mask is enough.
  inside = np.all(mask[np.arange(space.NUM_EDGES), ops] > 0, axis=1)
  pool, pool_values = ops[inside], {n: v[inside] for n, v in all_values.items()}
  s = score(pool_values, settings)
  cands = candidates(mask)
  quality = []
  for e, o in cands:
    mine = np.sort(s[pool[:, e] == o])[::-1]
    # A top fraction, not a fixed top k: the best of more draws is larger, so a fixed k would
    # favour operators drawn more often.
    k = int(np.ceil(settings.top_fraction * len(mine)))
    quality.append(float(mine[:k].mean()) if len(mine) else -np.inf)
  chosen, work = _prune(mask, cands, np.asarray(quality), settings)
  table = [{"edge": e, "op": space.OPS[o], "quality": quality[i], "pruned": i in chosen,
            "cells": int(np.sum(pool[:, e] == o))} for i, (e, o) in enumerate(cands)]
  record = {"round": state.round + 1, "kind": "prune", "strategy": "cells",
            "mask_before": mask.astype(int).tolist(), "mask_after": work.astype(int).tolist(),
            "indicators": list(values), **_weights_record(settings),
            "top_fraction": settings.top_fraction, "candidates": table,
            "evaluated": _cell_rows(new, values), **key_record,
            "pruned": [{"edge": cands[i][0], "op": space.OPS[cands[i][1]]} for i in sorted(chosen)]}
  return state.replace(mask=work, round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


def final_round(state: SearchState, settings: EnsembleSettings, progress=None) -> SearchState:
  """Scores every remaining single-path cell (within the budget) and, with strategy 'cells',
  every cell of the archive with them; refines the best by local search
  (``settings.refine_steps``) and keeps the best one."""
  mask = np.asarray(state.mask, np.float32)
  round_key, next_key = _keys(state)
  if settings.strategy == "cells":
    # The archive: every cell scored so far, all within the budget (drawn or refined so).
    key, key_record = _cell_key(state, round_key)
    ops, values = archive(state.history)
  else:
    key, key_record = round_key, {}
    ops, values = np.zeros((0, space.NUM_EDGES), np.int64), {}
  first_new = len(ops)
  new = _unseen(_scorable(mask, settings), {tuple(o) for o in ops.tolist()})
  if len(new):
    values = _concat(values, _evaluate(new, settings, key, progress, state.round + 1))
    ops = np.concatenate([ops, new])
  step = [0] * len(ops)
  s = score(values, settings)
  best = int(np.argmax(s))  # first of equals: deterministic
  allowed = (np.ones((space.NUM_EDGES, space.NUM_OPS), bool) if settings.allowed is None
             else np.asarray(settings.allowed, bool))
  for t in range(1, settings.refine_steps + 1):
    new = _unseen(np.array(_neighbours(tuple(ops[best].tolist()), allowed), np.int64),
                  {tuple(o) for o in ops.tolist()})
    if settings.budget is not None and len(new):
      new = new[settings.budget.meets(new)]
    if not len(new):
      break
    values = _concat(values, _evaluate(new, settings, key, progress, state.round + 1))
    ops = np.concatenate([ops, new])
    step += [t] * len(new)
    s = score(values, settings)
    prev, best = best, int(np.argmax(s))
    if best == prev:
      break
  eye = np.eye(space.NUM_OPS, dtype=np.float32)
  rerank = {}
  if settings.rerank_top and settings.rerank:
    best, rerank = _rerank(ops, values, s, settings, key, progress, state.round + 1)
  table = _cell_rows(ops, values, score=s, chosen=np.arange(len(ops)) == best,
                     step=np.asarray(step))
  record = {"round": state.round + 1, "kind": "final", "mask_before": mask.astype(int).tolist(),
            "mask_after": eye[ops[best]].astype(int).tolist(), "indicators": list(values),
            **_weights_record(settings), "cells": table, "refine_steps": max(step), "pruned": [],
            **({"rerank": rerank} if rerank else {})}
  # Cells evaluated in this round (not earlier): with the archive, those after first_new.
  record["evaluated"] = [{k: v for k, v in row.items()
                          if k == "arch_str" or k.startswith("value_")} for row in table[first_new:]]
  record.update(key_record)
  return state.replace(mask=eye[ops[best]], round=state.round + 1,
                       key=np.asarray(jax.random.key_data(next_key), np.uint32),
                       history=state.history + (record,))


# Folded into the search's cell key for the re-rank's data and weights: a draw of its own, and a
# cell's re-rank values depend only on the search's key, not on which cells share the top.
_RERANK_SALT = 0x5E5A


def _rerank(ops, values, s, settings: EnsembleSettings, key, progress, round_no):
  """The final round's pick after the opt-in re-rank: the ``rerank_top`` best cells by ``s``
  (ties in order) scored with the re-rank evaluators, the score recomposed inside them with
  those indicators added to the accuracy composition (weight 1 each). Returns (index of the
  pick in ``ops``, the record: k, indicators and one row per re-ranked cell)."""
  top = np.argsort(-s, kind="stable")[:settings.rerank_top]
  extra = _evaluate(ops[top], settings, jax.random.fold_in(key, _RERANK_SALT), progress,
                    round_no, settings.rerank)
  inside = {**{n: v[top] for n, v in values.items()}, **extra}
  st = score(inside, settings, extra={n: (1.0, settings.directions[n]) for n in extra})
  pick = int(np.argmax(st))
  return int(top[pick]), {"top": len(top), "indicators": list(extra),
                          "cells": _cell_rows(ops[top], inside, score=st,
                                              chosen=np.arange(len(top)) == pick)}


def evaluations(history) -> int:
  """Cells (or candidate supernets) a search of this mode evaluated, from its round records; a
  re-ranked cell counts again (scored with other indicators)."""
  n = 0
  for rec in history:
    if "evaluated" in rec:
      n += len(rec["evaluated"])
      n += len(rec.get("rerank", {}).get("cells", ()))
    elif rec.get("kind") == "prune":
      n += len(rec.get("candidates", ()))
  return n


def run(state: SearchState, settings: EnsembleSettings,
        on_round: Optional[Callable[[SearchState], None]] = None,
        progress: Optional[Callable[..., None]] = None) -> SearchState:
  """Prune rounds until at most ``final_cells`` cells (within the budget) remain, then the
  final ranking."""
  if settings.budget is not None:
    settings.budget.check_reachable(state.mask)
  prune = cell_round if settings.strategy == "cells" else prune_round
  while not state.done:
    if len(_scorable(state.mask, settings)) <= settings.final_cells:
      state = final_round(state, settings, progress)
    else:
      state = prune(state, settings, progress)
    if on_round:
      on_round(state)
  return state
