"""Composition of indicators: ranks, the two rules, weights and directions."""
import numpy as np
import pytest
from scipy import stats

from monas_jax.search import compose


def test_ranks_fractional_direction_and_nan_worst():
  np.testing.assert_array_equal(compose.ranks(np.array([3.0, 1.0, 3.0, 2.0]), True),
                                [3.5, 1.0, 3.5, 2.0])
  np.testing.assert_array_equal(compose.ranks(np.array([3.0, 1.0, 2.0]), False), [1.0, 3.0, 2.0])
  r = compose.ranks(np.array([np.nan, -np.inf, 0.0, 5.0]), True)
  assert r[3] == 4.0 and r[2] == 3.0 and r[0] < 3.0 and r[1] < 3.0


def test_log_rank_is_azn_nas_product_of_rank_fractions():
  rng = np.random.default_rng(0)
  v = {"a": rng.normal(size=50), "b": rng.normal(size=50)}
  s = compose.compose(v, {"a": True, "b": False}, rule="log_rank")
  ra = stats.rankdata(v["a"]) / 50
  rb = stats.rankdata(-v["b"]) / 50
  np.testing.assert_allclose(s, np.log(ra) + np.log(rb))
  # mean_rank: the paper's weighted mean of ranks (from 0).
  m = compose.compose(v, {"a": True, "b": False}, {"a": 0.25, "b": 0.75}, rule="mean_rank")
  np.testing.assert_allclose(m, 0.25 * (stats.rankdata(v["a"]) - 1)
                             + 0.75 * (stats.rankdata(-v["b"]) - 1))


def test_log_rank_punishes_one_bad_indicator_more_than_mean_rank():
  # Candidate 0 is best on a and worst on b; candidate 1 is second on both.
  v = {"a": np.array([3.0, 2.0, 1.0]), "b": np.array([0.0, 2.0, 3.0])}
  d = {"a": True, "b": True}
  assert np.argmax(compose.compose(v, d, rule="log_rank")) == 1
  m = compose.compose(v, d, rule="mean_rank")
  assert m[0] == m[1]  # the linear rule cannot tell them apart


def test_zero_weight_leaves_an_indicator_out_and_bad_input_fails():
  v = {"a": np.array([1.0, 2.0]), "b": np.array([2.0, 1.0])}
  s = compose.compose(v, {"a": True, "b": True}, {"a": 1.0, "b": 0.0})
  assert np.argmax(s) == 1
  with pytest.raises(ValueError, match="rule"):
    compose.compose(v, {"a": True, "b": True}, rule="max")
  with pytest.raises(ValueError, match="direction"):
    compose.compose(v, {"a": True})


def test_missing_weights_weigh_one_and_bad_shapes_fail():
  v = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([3.0, 1.0, 2.0])}
  d = {"a": True, "b": True}
  # A weight map without 'b' weighs it 1, as the docstring says (it was 0).
  np.testing.assert_allclose(compose.compose(v, d, {"a": 2.0}), compose.compose(v, d, {"a": 2.0,
                                                                                      "b": 1.0}))
  with pytest.raises(ValueError, match="differ in length"):
    compose.compose({"a": np.ones(3), "b": np.ones(2)}, d)
  with pytest.raises(ValueError, match="no values"):
    compose.compose(v, d, {"a": 1.0, "c": 1.0})


def test_hardware_aware_is_eq3_with_one_accuracy_rank():
  acc = np.array([3.0, 2.0, 1.0])  # cell 0 most accurate
  lat = np.array([30.0, 10.0, 20.0])  # cell 1 fastest
  np.testing.assert_array_equal(np.argsort(compose.hardware_aware(acc, {"latency": lat},
                                                                  {"latency": 0.0})), [2, 1, 0])
  s = compose.hardware_aware(acc, {"latency": lat}, {"latency": 0.8})
  np.testing.assert_allclose(s, 0.2 * np.array([2, 1, 0]) + 0.8 * np.array([0, 2, 1]))
  assert np.argmax(s) == 1
  with pytest.raises(ValueError, match="at most 1"):
    compose.hardware_aware(acc, {"latency": lat, "flops": lat}, {"latency": 0.6, "flops": 0.6})
