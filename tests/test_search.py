"""Pruning search: ranking, rounds, budgets, and the whole command on the smoke config."""
import json
import os

import numpy as np
import pytest

from experiments import search as search_cmd
from monas_jax import config as config_lib, search as search_lib, space
from monas_jax.hardware import latency
from monas_jax.search import budget as budget_lib, loop, ranking


def test_dense_rank_and_delta():
  np.testing.assert_array_equal(ranking.dense_rank(np.array([0.3, 0.1, 0.3, -0.2]), True),
                                [0, 1, 0, 2])
  np.testing.assert_array_equal(ranking.dense_rank(np.array([0.3, 0.1, 0.3, -0.2]), False),
                                [2, 1, 2, 0])
  d = ranking.relative_delta(np.array([10.0, 20.0]), np.array([[5.0, 10.0], [10.0, 30.0]]), 3)
  np.testing.assert_allclose(d, [(0.5 + 0.5) / 2, (0.0 - 0.5) / 2])
  np.testing.assert_allclose(ranking.relative_delta(np.array([3.0]), np.array([[1.0]]), 3), [0.667])
  w = ranking.weights(0.0, 0.8)
  assert w == pytest.approx({"K": 0.1, "R": 0.1, "F": 0.0, "L": 0.8})


def test_candidates():
  m = space.full_mask(("none",))
  c = loop.candidates(m)
  assert len(c) == 24 and c[0] == (0, 1)
  m[0] = space.ops_to_mask((3,) * 6)[0]
  assert len(loop.candidates(m)) == 20
  masks = loop.candidate_masks(m, loop.candidates(m))
  assert (masks.sum(axis=(1, 2)) == m.sum() - 1).all()


def _fixed_settings(values, weights, **kw):
  """Round settings with deterministic evaluators given as per-(edge, op) tables."""
  evs = {n: (lambda masks, key, init_key, t=t: (np.asarray(masks) * t).sum(axis=(1, 2)))
         for n, t in values.items()}
  return loop.RoundSettings(evaluators=evs, stochastic=frozenset(), weights=weights, **kw)


def test_round_prunes_lowest_score_per_edge_and_ends_single_path():
  rng = np.random.default_rng(0)
  table = rng.random((6, 5)) + 0.1
  settings = _fixed_settings({"F": table}, {"K": 0, "R": 0, "F": 1.0, "L": 0})
  from monas_jax.search.state import initial_state
  s = initial_state(0)
  s1 = loop.search_round(s, settings)
  # F by delta descending: the most expensive op of each edge goes first.
  for e in range(6):
    active = np.flatnonzero(s.mask[e])
    worst = active[np.argmax(table[e, active])]
    assert s1.mask[e, worst] == 0 and s1.mask[e].sum() == 3
  final = loop.run(s, settings)
  assert final.done and final.round == 3
  np.testing.assert_array_equal(np.argmax(final.mask, 1), np.argmin(
      np.where(s.mask > 0, table, np.inf), 1))
  rec = final.history[0]
  assert len(rec["candidates"]) == 24 and sum(r["pruned"] for r in rec["candidates"]) == 6


def test_latency_budget_is_met_and_unreachable_budget_fails():
  prof = latency.load_profile("stm32f746")
  table = np.tile(np.arange(5.0), (6, 1))  # prefers pruning high op indices (conv3, pool)
  cheap = 1.5 * latency.estimate_ms(prof, (1,) * 6)
  b = budget_lib.Budget(profile=prof, latency_ms=cheap)
  settings = _fixed_settings({"F": -table}, {"K": 0, "R": 0, "F": 1.0, "L": 0}, budget=b)
  from monas_jax.search.state import initial_state
  final = loop.run(initial_state(0), settings)
  assert latency.estimate_ms(prof, np.argmax(final.mask, 1)) <= cheap
  tiny = budget_lib.Budget(profile=prof, latency_ms=0.01)
  with pytest.raises(budget_lib.BudgetError, match=r"smallest reachable latency is 0\.858"):
    loop.run(initial_state(0), _fixed_settings({"F": table}, {"F": 1.0}, budget=tiny))


def test_memory_budget_of_small_mcu():
  prof = latency.load_profile("stm32l432")
  b = budget_lib.Budget(profile=prof, sram_bytes=prof.sram_bytes, flash_bytes=prof.flash_bytes)
  m = space.full_mask(("none",))
  assert b.feasible(m)
  cells = b.cells(m)
  ok = b._ok(cells)
  assert 0 < ok.sum() < len(ok)  # the small MCU rules out part of the space


@pytest.mark.parametrize("field, value, message", [
    ("dataset", "mnist", "config.dataset = 'mnist'"),
    ("seed", -1, "config.seed"),
    ("ntk.cond_index", 40, "config.ntk.cond_index = 40"),
    ("ntk.init", "xavier", "'kaiming' or 'torch_default'"),
    ("search.latency_weight", 1.2, r"in \[0, 1\)"),
    ("search.exclude_ops", ("none", "conv"), "search.exclude_ops"),
    ("hardware.profile", "stm99", "hardware.profile = 'stm99'"),
    ("shard_index", 3, "num_shards = 1"),
    ("ensemble.refine_ops", "none", "'auto', 'search' or 'all'"),
])
def test_bad_config_fails_with_field_value_and_allowed(field, value, message):
  c = config_lib.make_config("cifar10")
  node, _, leaf = field.rpartition(".")
  (c[node] if node else c)[leaf] = value
  with pytest.raises(ValueError, match=message):
    config_lib.validate(c)


def test_config_rejects_unknown_fields_and_both_weights():
  c = config_lib.make_config("cifar100")
  with pytest.raises(AttributeError):
    c.search.lamda = 0.5  # locked: typos fail instead of being ignored
  c.search.flops_weight, c.search.latency_weight = 0.6, 0.6
  with pytest.raises(ValueError, match="at most 1"):
    config_lib.validate(c)
  c = config_lib.make_config("imagenet16_120")
  with pytest.raises(ValueError, match="Imagenet16_train"):
    config_lib.validate(c)


# ---------------------------------------------------------------- the whole command (smoke)

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  config = config_lib.make_config("cifar10", "smoke")
  workdir = str(tmp_path_factory.mktemp("smoke"))
  lines = []
  result = search_cmd.run(config, workdir, echo=lines.append)
  return config, workdir, result, lines


def test_smoke_search_writes_result(smoke_run):
  config, workdir, result, lines = smoke_run
  with open(os.path.join(workdir, "result.json")) as f:
    on_disk = json.load(f)
  assert on_disk["arch_str"] == result["arch_str"]
  space.Arch.from_string(result["arch_str"])
  assert len(result["rounds"]) == 3
  assert [len(r["candidates"]) for r in result["rounds"]] == [24, 18, 12]
  row = result["rounds"][0]["candidates"][0]
  assert {"delta_K", "delta_R", "delta_F", "delta_L", "rank_K", "score", "pruned"} <= set(row)
  cell = result["cell"]
  for k in ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc", "flops_M",
            "params_M", "flash_bytes_int8", "peak_sram_bytes_int8"):
    assert k in cell
  assert set(cell["latency_ms"]) == set(latency.builtin_profiles())
  # Compile seconds are those this search spent: 0 when an earlier test in this process compiled
  # the same shapes (evaluators are shared across data of one shape); test_compile_once checks
  # that a search that compiles records it.
  assert result["seconds"]["compile"] >= 0 and result["seconds"]["compute"] > 0
  assert result["config"]["search"]["repeats"] == 1 and result["seed"] == 0
  assert "bundled" in result["data_source"] and result["versions"]["jax"]
  assert any("bundled sample" in line for line in lines)


def test_resume_after_crash_gives_identical_result(smoke_run, tmp_path):
  config, _, first, _ = smoke_run
  workdir = str(tmp_path)

  def crash_after_first_round(line):
    if line.startswith("round 1:"):
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    search_cmd.run(config, workdir, echo=crash_after_first_round)
  with open(os.path.join(workdir, "checkpoint.json")) as f:
    assert json.load(f)["state"]["round"] == 1
  assert not os.path.exists(os.path.join(workdir, "result.json"))
  for ev in search_lib._EVALUATORS.values():
    ev.clear_memo()  # recompute rounds 2-3 for real: determinism, not memoisation
  lines = []
  second = search_cmd.run(config, workdir, echo=lines.append)
  assert any("resuming" in line for line in lines)
  assert second["arch_str"] == first["arch_str"]
  assert second["rounds"] == first["rounds"]  # same deltas, ranks and scores: deterministic


def test_resume_refuses_a_different_config(smoke_run, tmp_path):
  config, workdir, _, _ = smoke_run
  other = config_lib.make_config("cifar10", "smoke")
  other.seed = 1
  with pytest.raises(ValueError, match="different config"):
    search_cmd.run(other, workdir, echo=lambda _: None)


def test_latency_weight_and_budget_end_to_end(smoke_run, tmp_path):
  config, _, base, _ = smoke_run
  c = config_lib.make_config("cifar10", "smoke")
  c.search.latency_weight = 0.8
  budget = 0.5 * base["cell"]["latency_ms"]["stm32f746"]
  c.search.latency_budget_ms = budget
  r = search_cmd.run(c, str(tmp_path), echo=lambda _: None)
  assert r["cell"]["latency_ms"]["stm32f746"] <= budget
  c.search.latency_budget_ms = 0.5
  with pytest.raises(budget_lib.BudgetError, match="0.858"):
    search_cmd.run(c, str(tmp_path / "x"), echo=lambda _: None)


# Ranking direction: with all weight on one indicator, a round must prune, on every edge, the
# operator whose removal leaves the better supernet by that indicator's direction. Flipping
# any direction (loop's DESCENDING, zero_cost's HIGHER_IS_BETTER) fails these.
_TARGET = {e: 1 + (e % 3) for e in range(space.NUM_EDGES)}  # op to prune on each edge


def _op_table(sign):
  """(6, 5) values: removing _TARGET[e] on edge e moves the indicator by ``sign`` the most."""
  t = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  for e, o in _TARGET.items():
    t[e, o] = -sign * 10.0  # the supernet's value is sum(mask * t): removing o adds sign * 10
    t[e, (o % 4) + 1 if (o % 4) + 1 != o else 2] = sign * 1.0
  return t


@pytest.mark.parametrize("short, better", [("K", "lower"), ("R", "higher"), ("F", "lower"),
                                           ("L", "lower")])
def test_monas_round_prunes_in_each_indicators_direction(short, better):
  sign = 1.0 if better == "higher" else -1.0
  # Positive values keep the relative deltas well defined.
  t = _op_table(sign) + 100.0 / space.NUM_EDGES
  settings = _fixed_settings({short: t}, {short: 1.0})
  state = search_lib.search_round(search_lib.initial_state(0), settings)
  pruned = {(p["edge"], p["op"]) for p in state.history[-1]["pruned"]}
  assert pruned == {(e, space.OPS[o]) for e, o in _TARGET.items()}


def _ensemble_settings(name, higher, table):
  ev = lambda masks, key, init_key, **kw: (np.asarray(masks) * table).sum(axis=(1, 2))[:, None]
  return search_lib.EnsembleSettings(evaluators=(((name,), ev),), directions={name: higher},
                                     weights={name: 1.0}, final_cells=1)


def test_ensemble_round_prunes_in_each_proxys_direction():
  from monas_jax.proxies import zero_cost
  for name, higher in {**zero_cost.HIGHER_IS_BETTER, "latency": False}.items():
    t = _op_table(1.0 if higher else -1.0)
    s = search_lib.ensemble.prune_round(search_lib.initial_state(0), _ensemble_settings(
        name, higher, t))
    pruned = {(p["edge"], p["op"]) for p in s.history[-1]["pruned"]}
    assert pruned == {(e, space.OPS[o]) for e, o in _TARGET.items()}, name


def test_ensemble_final_round_keeps_the_best_cell_within_budget():
  mask = space.full_mask(("none",))
  mask[:, 1] = 0.0  # skip out
  mask[:, 4] = 0.0  # pool out: 2 ops per edge, 64 cells
  state = search_lib.initial_state(0).replace(mask=mask)
  table = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  table[:, 3] = 1.0  # more 1x1 convs = better
  s = search_lib.ensemble.run(state, _ensemble_settings("synflow", True, table).__class__(
      **{**_ensemble_settings("synflow", True, table).__dict__, "final_cells": 64}))
  assert s.done and len(s.history) == 1 and s.history[0]["kind"] == "final"
  assert len(s.history[0]["cells"]) == 64
  assert tuple(np.argmax(s.mask, axis=1)) == (3,) * 6
  # With a latency budget only cells within it are scored, and the result meets it.
  prof = latency.load_profile("stm32f746")
  lat = latency.estimate_many_ms(prof, np.array(space.single_path_ops(mask)))
  b = budget_lib.Budget(profile=prof, latency_ms=float(np.median(lat)))
  s = search_lib.ensemble.final_round(state, search_lib.EnsembleSettings(
      evaluators=_ensemble_settings("synflow", True, table).evaluators,
      directions={"synflow": True}, weights={"synflow": 1.0}, budget=b))
  assert 0 < len(s.history[0]["cells"]) < 64
  assert latency.estimate_many_ms(prof, np.argmax(s.mask, axis=1)[None])[0] <= b.latency_ms + 1e-9


def test_ensemble_prune_round_keeps_cells_within_the_budget():
  """With a budget, prune rounds also rank candidates by the cells within it that they keep:
  with indicators that cannot tell candidates apart, the slowest operator (3x3) goes on every
  edge, and the round's table records the 'feasible' indicator."""
  prof = latency.load_profile("stm32f746")
  b = budget_lib.Budget(profile=prof, latency_ms=15.0)
  base = _ensemble_settings("synflow", True, np.zeros((space.NUM_EDGES, space.NUM_OPS)))
  s = search_lib.ensemble.prune_round(search_lib.initial_state(0), search_lib.EnsembleSettings(
      **{**base.__dict__, "final_cells": 64, "budget": b}))
  rec = s.history[-1]
  assert {(p["edge"], p["op"]) for p in rec["pruned"]} == {(e, "nor_conv_3x3") for e in range(6)}
  assert "feasible" in rec["indicators"] and rec["weights"]["feasible"] > 0
  assert all(c["value_feasible"] >= 1 for c in rec["candidates"])


def test_ensemble_counts_only_cells_within_the_budget_for_the_final_round():
  """With a budget, the direct ranking starts once at most final_cells cells meet it: a budget
  met by 40 of the 4,096 cells goes straight to the final round and scores exactly those."""
  prof = latency.load_profile("stm32f746")
  mask = space.full_mask(("none",))
  lat = np.sort(latency.estimate_many_ms(prof, np.array(space.single_path_ops(mask))))
  b = budget_lib.Budget(profile=prof, latency_ms=float(lat[39]))
  n = len(b.within(mask))
  assert 40 <= n <= 64  # ties at the 40th latency may add a few
  assert b.meets(np.array(space.single_path_ops(mask))).sum() == n  # vectorised twin of within
  table = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  table[:, 2] = 1.0
  base = _ensemble_settings("synflow", True, table)
  s = search_lib.ensemble.run(search_lib.initial_state(0), search_lib.EnsembleSettings(
      **{**base.__dict__, "final_cells": 64, "budget": b}))
  assert [r["kind"] for r in s.history] == ["final"] and len(s.history[0]["cells"]) == n
  assert latency.estimate_many_ms(prof, np.argmax(s.mask, axis=1)[None])[0] <= b.latency_ms + 1e-9


def test_ensemble_refine_brings_back_a_pruned_operator():
  """Local search after the final ranking: skip was pruned on every edge, but skip on edge 0 is
  better; one-edge neighbours find it, within the allowed operators and the budget only."""
  mask = space.full_mask(("none",))
  mask[:, 1] = 0.0
  mask[:, 4] = 0.0
  state = search_lib.initial_state(0).replace(mask=mask)
  table = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  table[:, 3] = 1.0
  table[0, 1] = 2.0  # skip on edge 0 beats 1x1 there
  table[:, 0] = 5.0  # 'none' would be best, but it is not allowed
  base = _ensemble_settings("synflow", True, table)
  make = lambda **kw: search_lib.EnsembleSettings(**{**base.__dict__, "final_cells": 64,
                                                     "allowed": space.full_mask(("none",)), **kw})
  s = search_lib.ensemble.final_round(state, make(refine_steps=0))
  assert tuple(np.argmax(s.mask, axis=1)) == (3,) * 6
  s = search_lib.ensemble.final_round(state, make(refine_steps=3))
  assert tuple(np.argmax(s.mask, axis=1)) == (1, 3, 3, 3, 3, 3)
  cells = s.history[0]["cells"]
  assert sum(c["step"] == 0 for c in cells) == 64
  # Step 1 adds the best cell's unscored neighbours: skip or pool on each edge (12); step 2
  # those of the new best not seen yet (pool on edge 0, skip/pool elsewhere: 11); then it stops.
  assert sum(c["step"] == 1 for c in cells) == 12 and s.history[0]["refine_steps"] == 2
  assert all("none" not in c["arch_str"] for c in cells)
  assert len({c["arch_str"] for c in cells}) == len(cells)
  # With every operator allowed (ensemble.refine_ops='all'), each step puts 'none' on one more
  # edge: three steps, three edges.
  s = search_lib.ensemble.final_round(state, make(refine_steps=3, allowed=space.full_mask(())))
  assert np.sum(np.argmax(s.mask, axis=1) == 0) == 3 and s.history[0]["refine_steps"] == 3


def test_refine_ops_lets_the_local_search_use_excluded_operators():
  c = config_lib.make_config("cifar10")
  assert c.search.exclude_ops == ("none",) and c.ensemble.refine_ops == "auto"
  only_search = lambda m: not m[:, 0].any() and m[:, 1:].all()
  # 'auto' without a latency objective: the operators the supernet rounds use.
  assert only_search(search_lib.refine_allowed(c))
  c.ensemble.refine_ops = "search"
  c.search.latency_weight = 0.5
  assert only_search(search_lib.refine_allowed(c))
  # 'auto' with mu > 0: every operator; with a latency budget alone: the search's operators.
  c.ensemble.refine_ops = "auto"
  assert search_lib.refine_allowed(config_lib.validate(c, needs_images=False)).all()
  c.search.latency_weight = 0.0
  c.search.latency_budget_ms = 15.0
  assert only_search(search_lib.refine_allowed(config_lib.validate(c, needs_images=False)))
  c.search.latency_budget_ms = None
  assert only_search(search_lib.refine_allowed(c))
  c.ensemble.refine_ops = "all"
  assert search_lib.refine_allowed(config_lib.validate(c, needs_images=False)).all()
  c.search.exclude_ops = ("none", "avg_pool_3x3")
  assert search_lib.refine_allowed(c).all()  # the supernet rounds still run without them


def _table_evaluator(tables):
  """Evaluator of several indicators at once, each a per-(edge, op) table summed over the mask."""
  names = tuple(tables)
  t = np.stack([tables[n] for n in names], axis=-1)
  return names, lambda masks, key, init_key, **kw: np.einsum("meo,eok->mk", np.asarray(masks), t)


def test_cell_round_prunes_the_operator_whose_best_cells_score_lowest():
  """Strategy 'cells': single cells drawn inside the supernet are scored; on every edge the
  operator whose best cells score lowest goes; the drawn cells and their values are recorded."""
  rng = np.random.default_rng(1)
  table = rng.random((space.NUM_EDGES, space.NUM_OPS))
  worst = {e: 1 + (e % 4) for e in range(space.NUM_EDGES)}
  for e, o in worst.items():
    table[e, o] = -10.0
  settings = search_lib.EnsembleSettings(
      evaluators=(_table_evaluator({"synflow": table}),), directions={"synflow": True},
      weights={"synflow": 1.0}, strategy="cells", cells_per_round=128)
  s = search_lib.ensemble.cell_round(search_lib.initial_state(0), settings)
  rec = s.history[-1]
  assert {(p["edge"], p["op"]) for p in rec["pruned"]} == {
      (e, space.OPS[o]) for e, o in worst.items()}
  assert len(rec["evaluated"]) == 128 and "cell_key" in rec
  for c in rec["evaluated"]:
    ops = space.parse_arch_str(c["arch_str"])
    assert c["value_synflow"] == pytest.approx(sum(table[e, o] for e, o in enumerate(ops)))
  # The second round draws cells not drawn before, scored with the same key.
  s2 = search_lib.ensemble.cell_round(s, settings)
  drawn = [c["arch_str"] for r in s2.history for c in r["evaluated"]]
  assert len(drawn) == len(set(drawn)) == 256 and "cell_key" not in s2.history[-1]


def test_cell_round_under_a_tight_budget_draws_every_operator_it_may_keep():
  """Under a 10 ms budget most balanced-design rows break the budget; the fill covers the
  (edge, operator) pairs drawn least, so every pair some cell within the budget uses is drawn
  and no operator is pruned unseen (a uniform fill leaves 3x3 on some edges with no cell)."""
  prof = latency.load_profile("stm32f746")
  b = budget_lib.Budget(profile=prof, latency_ms=10.0)
  mask = space.full_mask()
  cells = b.within(mask)
  assert len({(e, o) for c in cells.tolist() for e, o in enumerate(c)}) == 30

  def counts(cover, seed):
    drawn = search_lib.ensemble.balanced_draw(cells, mask, 32, np.random.default_rng(seed),
                                             cover=cover)
    assert len({tuple(c) for c in drawn.tolist()}) == 32 and b.meets(drawn).all()
    n = np.zeros((space.NUM_EDGES, space.NUM_OPS), int)
    for c in drawn.tolist():
      n[np.arange(space.NUM_EDGES), c] += 1
    return n

  assert min(counts(True, s).min() for s in range(5)) >= 1
  assert min(counts(False, s).min() for s in range(5)) == 0
  table = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  settings = search_lib.EnsembleSettings(
      evaluators=(_table_evaluator({"synflow": table}),), directions={"synflow": True},
      weights={"synflow": 1.0}, strategy="cells", budget=b)
  rec = search_lib.ensemble.cell_round(search_lib.initial_state(0), settings).history[-1]
  assert min(c["cells"] for c in rec["candidates"]) >= 1


def _hw_final(cost_weights, acc_weights=None):
  """Final round over 64 cells (1x1 or 3x3 conv per edge) with a flat accuracy indicator, FLOPs
  and latency tables where 3x3 costs more on every edge; returns the chosen ops."""
  mask = space.full_mask(("none", "skip_connect", "avg_pool_3x3"))
  conv3, conv1 = space.OP_INDEX["nor_conv_3x3"], space.OP_INDEX["nor_conv_1x1"]
  flops = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  flops[:, conv1], flops[:, conv3] = 1.0, 9.0
  lat = flops * 0.5
  lat[0] = 0.0  # latency: edge 0 free, so mu alone leaves it to the accuracy indicator
  acc = np.zeros((space.NUM_EDGES, space.NUM_OPS))
  acc[0, conv3] = 1.0  # 3x3 on edge 0 is the accurate choice
  evs = (_table_evaluator({"synflow": acc, "flops": flops}), _table_evaluator({"latency": lat}))
  settings = search_lib.EnsembleSettings(
      evaluators=evs, directions={"synflow": True, "flops": True},
      weights=acc_weights or {"synflow": 1.0}, cost_weights=cost_weights, final_cells=64,
      refine_steps=0)
  s = search_lib.ensemble.run(search_lib.initial_state(0).replace(mask=mask), settings)
  return tuple(np.argmax(s.mask, axis=1))


def test_mu_and_lambda_penalise_latency_and_flops_in_mode_ensemble():
  conv3, conv1 = space.OP_INDEX["nor_conv_3x3"], space.OP_INDEX["nor_conv_1x1"]
  # Accuracy only: the accurate 3x3 on edge 0; the rest tie (first of equals).
  assert _hw_final({})[0] == conv3
  # mu: latency is a cost. The slow 3x3 goes wherever it costs latency; edge 0 keeps accuracy.
  assert _hw_final({"latency": 0.5}) == (conv3,) + (conv1,) * 5
  # lambda: FLOPs is a cost (lower is better): the cheap 1x1 wherever accuracy does not care.
  assert _hw_final({"flops_cost": 0.5}) == (conv3,) + (conv1,) * 5
  # FLOPs as an accuracy indicator (AZ-NAS's complexity term) rewards FLOPs instead.
  assert _hw_final({}, {"synflow": 1.0, "flops": 1.0}) == (conv3,) * 6


def test_final_rerank_recomposes_the_best_cells_with_the_rerank_indicators():
  """ensemble.rerank_top: the final round's k best cells are scored with the re-rank
  indicators, the pick is recomposed inside them, and every re-ranked cell is recorded with
  all its values (counted as evaluations)."""
  import dataclasses
  mask = space.full_mask(("none", "skip_connect", "avg_pool_3x3"))  # 1x1 or 3x3: 64 cells
  conv3, conv1 = space.OP_INDEX["nor_conv_3x3"], space.OP_INDEX["nor_conv_1x1"]
  syn, ent = np.zeros((space.NUM_EDGES, space.NUM_OPS)), np.zeros((space.NUM_EDGES, space.NUM_OPS))
  syn[:, conv1], syn[0, conv3] = 1.0, 0.9  # all-1x1 first, 3x3 on edge 0 second
  ent[0, conv3] = 1.0  # the re-rank indicator prefers 3x3 on edge 0
  base = search_lib.EnsembleSettings(
      evaluators=(_table_evaluator({"synflow": syn}),),
      directions={"synflow": True, "vkdnw_entropy": True}, weights={"synflow": 1.0},
      final_cells=64, refine_steps=0)
  start = search_lib.initial_state(0).replace(mask=mask)
  plain = search_lib.ensemble.run(start, base)
  assert tuple(np.argmax(plain.mask, axis=1)) == (conv1,) * 6
  assert "rerank" not in plain.history[-1]
  s = search_lib.ensemble.run(start, dataclasses.replace(
      base, rerank=(_table_evaluator({"vkdnw_entropy": ent}),), rerank_top=4))
  final = s.history[-1]
  # Inside the top 4 (log-rank): all-1x1 ranks 4th / 2nd of 4 (ties), 3x3 on edge 0 3rd / 4th.
  assert tuple(np.argmax(s.mask, axis=1)) == (conv3,) + (conv1,) * 5
  rec = final["rerank"]
  assert rec["top"] == 4 and rec["indicators"] == ["vkdnw_entropy"]
  best4 = sorted(final["cells"], key=lambda c: -c["score"])[:4]
  assert [c["arch_str"] for c in rec["cells"]] == [c["arch_str"] for c in best4]
  for c in rec["cells"]:
    ops = space.parse_arch_str(c["arch_str"])
    assert c["value_vkdnw_entropy"] == pytest.approx(sum(ent[e, o] for e, o in enumerate(ops)))
    assert c["value_synflow"] == pytest.approx(sum(syn[e, o] for e, o in enumerate(ops)))
  chosen = [c["arch_str"] for c in rec["cells"] if c["chosen"]]
  assert chosen == [c["arch_str"] for c in final["cells"] if c["chosen"]] == [
      space.ops_to_arch_str((conv3,) + (conv1,) * 5)]
  assert search_lib.ensemble.evaluations(s.history) == 64 + 4


def test_rerank_config_is_checked():
  c = config_lib.make_config("cifar10")
  c.ensemble.rerank_top = 4
  config_lib.validate(c, needs_images=False)
  for field, value, match in (
      ("rerank_top", -1, "config.ensemble.rerank_top = -1 is not allowed"),
      ("rerank_indicators", ("trainability",), "not among ensemble.indicators"),
      ("rerank_indicators", ("nope",), "config.ensemble.rerank_indicators = \\('nope',\\)")):
    bad = config_lib.make_config("cifar10")
    bad.ensemble.rerank_top = 4
    bad.ensemble[field] = value
    with pytest.raises(ValueError, match=match):
      config_lib.validate(bad, needs_images=False)


def test_mu_and_lambda_penalise_latency_and_flops_in_mode_monas():
  """Eq. 3 in mode monas: with K and R flat, lambda prunes the FLOPs-heaviest operator and mu
  the slowest one on every edge."""
  rng = np.random.default_rng(2)
  flops, lat = rng.random((6, 5)) + 0.1, rng.random((6, 5)) + 0.1
  flat = np.ones((6, 5))
  for lam, mu, table in ((0.5, 0.0, flops), (0.0, 0.5, lat)):
    settings = _fixed_settings({"K": flat, "R": flat, "F": flops, "L": lat},
                               ranking.weights(lam, mu))
    s0 = search_lib.initial_state(0)
    s1 = loop.search_round(s0, settings)
    for e in range(6):
      active = np.flatnonzero(s0.mask[e])
      assert s1.mask[e, active[np.argmax(table[e, active])]] == 0


def test_budget_searches_start_with_none_in_mode_ensemble():
  """ensemble.budget_ops='auto': with a latency or memory budget the cell-level search starts
  from every operator and decides about `none` itself; otherwise the paper's exclusion."""
  c = config_lib.make_config("cifar10")
  assert search_lib.excluded_ops(c) == ("none",)
  c.search.mode = "ensemble"
  assert search_lib.excluded_ops(c) == ("none",)
  c.search.latency_budget_ms = 15.0
  assert search_lib.excluded_ops(c) == ()
  assert search_lib.refine_allowed(c).all()
  c.ensemble.budget_ops = "search"
  assert search_lib.excluded_ops(c) == ("none",)
  c.ensemble.budget_ops, c.ensemble.strategy = "auto", "supernet"
  assert search_lib.excluded_ops(c) == ("none",)
  c.ensemble.strategy, c.search.latency_budget_ms = "cells", None
  c.search.enforce_memory = True
  assert search_lib.excluded_ops(c) == ()
  c.ensemble.budget_ops = "sometimes"
  with pytest.raises(ValueError, match="budget_ops"):
    config_lib.validate(c, needs_images=False)


def test_latency_is_not_an_accuracy_indicator():
  c = config_lib.make_config("cifar10")
  c.search.mode = "ensemble"
  c.ensemble.indicators = ("synflow", "latency")
  c.ensemble.weights = (1.0, 1.0)
  with pytest.raises(ValueError, match="latency_weight"):
    config_lib.validate(c, needs_images=False)


def test_ensemble_mode_end_to_end(tmp_path):
  """Mode 'ensemble' on the smoke config, strategy 'cells': two prune rounds on drawn single
  cells, then the remaining cells and the archive ranked directly; every evaluated cell is in
  the result with its values; a resumed search ends on the same cell."""
  c = config_lib.make_config("cifar10", "smoke")
  c.search.mode = "ensemble"
  c.ensemble.indicators = ("synflow", "meco", "flops")  # cheap compiles for the fast suite
  c.ensemble.weights = (1.0, 1.0, 1.0)
  c.ensemble.cells_per_round = 8
  lines = []
  res = search_cmd.run(c, str(tmp_path), echo=lines.append)
  kinds = [r["kind"] for r in res["rounds"]]
  assert kinds == ["prune", "prune", "final"]  # 4^6 -> 3^6 -> 2^6 = 64 cells, then ranked
  assert [len(r["evaluated"]) for r in res["rounds"][:2]] == [8, 8]
  final = res["rounds"][-1]
  evaluated = [x["arch_str"] for r in res["rounds"] for x in r["evaluated"]]
  assert len(evaluated) == len(set(evaluated)) == res["evaluations"]
  assert {x["arch_str"] for x in final["cells"]} == set(evaluated)  # the archive is ranked
  assert sum(x["chosen"] for x in final["cells"]) == 1
  chosen = next(x for x in final["cells"] if x["chosen"])
  assert chosen["arch_str"] == res["arch_str"]
  assert chosen["score"] == max(x["score"] for x in final["cells"])
  assert set(final["indicators"]) == {"synflow", "meco", "flops"}
  assert {"value_synflow", "value_meco", "value_flops", "score"} <= set(chosen)
  assert any("evaluations" in line for line in lines)
  # Crash after the first round, then resume in the same workdir: the same cell and archive.
  crash = tmp_path / "crash"

  def stop_after_first_round(line):
    if line.startswith("round 1:"):
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    search_cmd.run(c, str(crash), echo=stop_after_first_round)
  again = search_cmd.run(c, str(crash), echo=lambda line: None)
  assert again["arch_str"] == res["arch_str"]
  assert again["rounds"][-1]["cells"] == final["cells"]
  # The earlier strategy still runs: candidate supernets in the prune rounds. lambda goes to
  # Eq. 3 as a cost; the accuracy indicators keep their own weights (FLOPs among them).
  c.ensemble.strategy = "supernet"
  c.ensemble.weights = (1.0, 2.0, 1.0)
  c.search.flops_weight = 0.3
  old = search_cmd.run(c, str(tmp_path / "supernet"), echo=lambda line: None)
  assert [len(r["candidates"]) for r in old["rounds"][:2]] == [24, 18]
  assert sum(x["step"] == 0 for x in old["rounds"][-1]["cells"]) == 64
  assert old["rounds"][0]["weights"] == {"synflow": 1.0, "meco": 2.0, "flops": 1.0}
  assert old["rounds"][0]["cost_weights"] == {"latency": 0.0, "flops_cost": 0.3}
