"""Fitting a latency table to end-to-end measurements, and scoring a table against them.

A measurement is the latency (ms) of the whole network for one cell. The table of Algorithm 1
(``latency.latency_ms``) is linear in its entries once the profile's flags are fixed, so a fit
is a non-negative least-squares problem (``scipy.optimize.nnls``): latencies are sums of
non-negative operator costs plus a non-negative overhead.

Candidate models (``MODELS``) differ in what the columns of the design matrix are:
- ``form``: one cost per operator shared by every edge ("op", Algorithm 1 as published), or one
  per edge and operator ("edge_op", 24 entries: edges differ in what they feed).
- ``prune_dead``: only operators whose output reaches the cell output count (dead-code
  elimination by the device's compiler).
- ``fold_zero_output``: a cell whose output is identically zero costs its own constant.
The model is chosen by k-fold cross-validation on the calibration cells alone (held-out Kendall
tau, pooled over folds; ties go to the simpler model), then refitted on all of them. The reported
held-out metrics come from nested cross-validation (the choice is redone inside every outer
fold), so they do not reuse the data that made the choice.

Metrics (``rank_metrics``): Kendall tau-b and Spearman rho, and the median absolute percentage
error. Predictions and measurements are compared at ``resolution_ms`` (1e-6 ms = 1 ns): both are
floating-point sums, and without rounding the last-bit noise of exactly tied values (devices such
as Eyeriss whose latency depends only on operator counts) is ranked as if it were signal.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any, Optional, Sequence

import numpy as np
from scipy import optimize, stats

from monas_jax import space
from monas_jax.hardware import cell_graph

RESOLUTION_MS = 1e-6


@dataclasses.dataclass(frozen=True)
class FitModel:
  """Which features a table fit uses (see the module docstring)."""

  form: str  # "op" or "edge_op"
  prune_dead: bool
  fold_zero_output: bool

  @property
  def label(self) -> str:
    return (f"{self.form}{'+prune_dead' if self.prune_dead else ''}"
            f"{'+fold_zero_output' if self.fold_zero_output else ''}")

  def num_params(self) -> int:
    per = 4 if self.form == "op" else 4 * space.NUM_EDGES
    return per + (2 if self.fold_zero_output else 1)


# Simplest first: ties in cross-validated tau go to the earlier model.
MODELS = tuple(FitModel(form, prune, fold) for form in ("op", "edge_op")
               for prune in (False, True) for fold in (False, True))


@dataclasses.dataclass(frozen=True)
class TableFit:
  """A fitted table: ``network_ms`` (6, 5) ms per edge and operator over the whole network."""

  model: FitModel
  network_ms: np.ndarray
  overhead_ms: float
  zero_output_ms: Optional[float]

  def predict(self, masks) -> np.ndarray:
    """(n, 6, 5) masks -> (n,) ms, float64."""
    x = design_matrix(masks, self.model)
    return x @ self.coefficients()

  def coefficients(self) -> np.ndarray:
    ms = self.network_ms[:, 1:]
    w = ms[0] if self.model.form == "op" else ms.reshape(-1)
    tail = [self.overhead_ms] + ([self.zero_output_ms] if self.model.fold_zero_output else [])
    return np.concatenate([w, tail])


def ops_to_masks(ops) -> np.ndarray:
  """(n, 6) operator indices -> (n, 6, 5) one-hot float64 masks."""
  a = np.asarray(ops, int)
  if a.ndim != 2 or a.shape[1] != space.NUM_EDGES:
    raise ValueError(f"ops must have shape (n, {space.NUM_EDGES}), got {a.shape}")
  return np.eye(space.NUM_OPS)[a]


def design_matrix(masks, model: FitModel) -> np.ndarray:
  """(n, 6, 5) masks -> (n, p) columns: operator costs, then overhead (then zero-output)."""
  m = np.asarray(masks, np.float64)
  eff = cell_graph.live_mask(m, np) if model.prune_dead else m
  feats = eff[..., 1:].sum(axis=1) if model.form == "op" else eff[..., 1:].reshape(len(m), -1)
  if not model.fold_zero_output:
    return np.concatenate([feats, np.ones((len(m), 1))], axis=1)
  z = cell_graph.output_is_zero(m, np).astype(np.float64)[:, None]
  return np.concatenate([feats * (1 - z), 1 - z, z], axis=1)


def fit_model(masks, latency_ms, model: FitModel) -> TableFit:
  """Non-negative least squares of one model on measured cells."""
  x = design_matrix(masks, model)
  y = np.asarray(latency_ms, np.float64)
  # Scaling columns to unit norm keeps NNLS well conditioned; all-zero columns stay zero.
  norm = np.linalg.norm(x, axis=0)
  norm[norm == 0] = 1.0
  w, _ = optimize.nnls(x / norm, y, maxiter=50 * x.shape[1])
  w = w / norm
  k = 4 if model.form == "op" else 4 * space.NUM_EDGES
  per = w[:k].reshape(-1, 4) if model.form == "edge_op" else np.tile(w[:k], (space.NUM_EDGES, 1))
  network_ms = np.concatenate([np.zeros((space.NUM_EDGES, 1)), per], axis=1)
  return TableFit(model, network_ms, float(w[k]),
                  float(w[k + 1]) if model.fold_zero_output else None)


def rank_metrics(predicted_ms, measured_ms,
                 resolution_ms: Optional[float] = RESOLUTION_MS) -> dict:
  """Kendall tau-b, Spearman rho, median absolute percentage error (%), number of cells.

  Both series are rounded to ``resolution_ms`` before ranking (None: no rounding). ``mape`` is
  the median over cells of |predicted - measured| / measured, in percent.
  """
  p = np.asarray(predicted_ms, np.float64)
  y = np.asarray(measured_ms, np.float64)
  if p.shape != y.shape or p.ndim != 1:
    raise ValueError(f"predicted and measured must be 1-D of equal length, got {p.shape}, {y.shape}")
  if len(p) < 3:
    raise ValueError(f"need at least 3 cells to rank, got {len(p)}")
  if resolution_ms is None:
    pr, yr = p, y
  else:
    pr, yr = np.round(p / resolution_ms), np.round(y / resolution_ms)
  with np.errstate(divide="ignore", invalid="ignore"):
    ape = np.abs(p - y) / np.abs(y)
  return {"kendall_tau": float(stats.kendalltau(pr, yr).statistic),
          "spearman_rho": float(stats.spearmanr(pr, yr).statistic),
          "mape": float(np.median(ape) * 100.0),
          "n_cells": int(len(p))}


def kfold_indices(n: int, k: int, seed: int) -> list[np.ndarray]:
  """k disjoint test-index arrays covering range(n), shuffled by ``seed``."""
  if not 2 <= k <= n:
    raise ValueError(f"k-fold needs 2 <= k <= n cells, got k={k}, n={n}")
  perm = np.random.default_rng(seed).permutation(n)
  return [np.sort(f) for f in np.array_split(perm, k)]


def _oof_predictions(masks, y, model, folds) -> np.ndarray:
  pred = np.empty(len(y))
  for test in folds:
    train = np.setdiff1d(np.arange(len(y)), test)
    pred[test] = fit_model(masks[train], y[train], model).predict(masks[test])
  return pred


def _usable(model: FitModel, masks) -> bool:
  # Without a zero-output cell among the calibration cells, its constant has no data.
  return not model.fold_zero_output or bool(np.any(cell_graph.output_is_zero(masks, np)))


def select_model(masks, latency_ms, k: int = 5, seed: int = 0,
                 models: Sequence[FitModel] = MODELS) -> tuple[FitModel, list[dict]]:
  """The model with the best k-fold held-out Kendall tau; returns it and every model's score."""
  m = np.asarray(masks, np.float64)
  y = np.asarray(latency_ms, np.float64)
  folds = kfold_indices(len(y), k, seed)
  scores = []
  for model in models:
    if not _usable(model, m):
      continue
    s = rank_metrics(_oof_predictions(m, y, model, folds), y)
    scores.append({"model": model.label, **s})
  # A constant prediction has no tau (NaN): rank it below every real score.
  best = max(range(len(scores)),
             key=lambda i: (np.nan_to_num(scores[i]["kendall_tau"], nan=-2.0), -i))
  chosen = next(md for md in models if md.label == scores[best]["model"])
  return chosen, scores


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
  """The refitted table, the model chosen, each model's k-fold score, nested-CV metrics."""

  fit: TableFit
  candidates: list
  heldout: dict  # rank_metrics of nested k-fold out-of-fold predictions
  folds: int
  seed: int


def calibrate(masks, latency_ms, k: int = 5, seed: int = 0,
              models: Sequence[FitModel] = MODELS) -> CalibrationResult:
  """Chooses a model by k-fold, refits it on every cell, and scores it by nested k-fold.

  Args:
    masks: (n, 6, 5) one-hot masks of the measured cells.
    latency_ms: (n,) measured latencies, ms, >= 0.
    k: folds (outer and inner); needs n >= k * k / (k - 1) or so for the inner split.
    seed: shuffles the folds.
  """
  m = np.asarray(masks, np.float64)
  y = np.asarray(latency_ms, np.float64)
  if len(y) < 2 * k:
    raise ValueError(f"calibration needs at least {2 * k} measured cells for {k}-fold, got {len(y)}")
  chosen, scores = select_model(m, y, k, seed, models)
  pred = np.empty(len(y))
  for i, test in enumerate(kfold_indices(len(y), k, seed + 1)):
    train = np.setdiff1d(np.arange(len(y)), test)
    inner, _ = select_model(m[train], y[train], k, seed + 2 + i, models)
    pred[test] = fit_model(m[train], y[train], inner).predict(m[test])
  return CalibrationResult(fit_model(m, y, chosen), scores, rank_metrics(pred, y), k, seed)


def table_fit_to_profile_fields(fit: TableFit) -> dict[str, Any]:
  """The profile fields (table, overhead and flags) of a fitted table."""
  ops = list(space.OPS)
  if fit.model.form == "op":
    table = {"form": "network_op", "ops": ops, "ms": np.round(fit.network_ms[0], 6).tolist()}
  else:
    table = {"form": "network_edge_op", "ops": ops, "ms": np.round(fit.network_ms, 6).tolist()}
  return {"table": table, "overhead_ms": round(fit.overhead_ms, 6),
          "prune_dead": fit.model.prune_dead, "fold_zero_output": fit.model.fold_zero_output,
          "zero_output_ms": None if fit.zero_output_ms is None else round(fit.zero_output_ms, 6)}


# ---------------------------------------------------------------------------------------------
# Measurements file (an I/O helper): CSV with columns arch_str and a latency column in ms.


def read_measurements(path, latency_column: str = "latency_ms") -> tuple[list[str], np.ndarray]:
  """Reads ``arch_str,latency_ms`` rows. Returns (arch strings, (n,) ms float64).

  Raises ValueError naming the file, line and problem: missing columns, an unparsable arch
  string (unknown operator), a non-numeric, negative or non-finite latency, duplicates, no rows.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f"measurements file {path!r} does not exist")
  try:
    with open(path, newline="", encoding="utf-8") as f:
      archs, lat = _parse_measurements(path, csv.DictReader(f), latency_column)
  except (UnicodeDecodeError, csv.Error) as err:
    raise ValueError(f"{path}: not a measurements CSV with columns arch_str,{latency_column} "
                     f"({type(err).__name__}: {err})") from None
  if not archs:
    raise ValueError(f"{path}: no measurements")
  return archs, np.array(lat, np.float64)


def _parse_measurements(path: str, reader: csv.DictReader, latency_column: str):
  """(arch strings, ms list) of ``read_measurements``'s rows; errors name the file and line."""
  cols = reader.fieldnames or []
  missing = [c for c in ("arch_str", latency_column) if c not in cols]
  if missing:
    raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; found {cols}; expected "
                     f"a header 'arch_str,{latency_column}'")
  archs, lat, seen = [], [], {}
  for line, row in enumerate(reader, start=2):
    s = (row["arch_str"] or "").strip()
    try:
      ops = space.parse_arch_str(s)
    except ValueError as err:
      raise ValueError(f"{path}:{line}: bad arch_str: {err}") from None
    canon = space.ops_to_arch_str(ops)
    if canon in seen:
      raise ValueError(f"{path}:{line}: cell {canon} already measured on line {seen[canon]}")
    seen[canon] = line
    try:
      v = float(row[latency_column])
    except (TypeError, ValueError):
      raise ValueError(f"{path}:{line}: latency {row[latency_column]!r} is not a number") from None
    if not np.isfinite(v) or v < 0:
      raise ValueError(f"{path}:{line}: latency must be finite and >= 0 ms, got {v}")
    archs.append(canon)
    lat.append(v)
  return archs, lat


def write_measurements(path, arch_strs: Sequence[str], latency_ms: Sequence[float]) -> None:
  """Writes ``arch_str,latency_ms`` rows, atomically. An I/O helper."""
  from monas_jax import io
  with io.atomic_file(os.fspath(path), ".csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["arch_str", "latency_ms"])
    for s, v in zip(arch_strs, latency_ms):
      w.writerow([s, repr(float(v))])
