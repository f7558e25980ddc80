"""A whole default (monas) search compiles each jitted function once.

Counts JAX's trace and backend-compile events (jax.monitoring) over a full smoke search with
fresh evaluators: every indicator's batched function is traced and compiled exactly once (ahead
of time, before the first round), the rounds after the first compile nothing, and a second
search of another seed in the same process traces and compiles nothing at all.
"""
import collections

import jax
from jax._src import dispatch
import pytest

from experiments import search as search_cmd
from monas_jax import config as config_lib, search as search_lib


class _Events:
  def __init__(self):
    self.trace = collections.Counter()
    self.compile = collections.Counter()
    self.active = True

  def __call__(self, event, duration, **kwargs):
    del duration
    if not self.active:
      return
    name = kwargs.get("fun_name")
    if event == dispatch.JAXPR_TRACE_EVENT:
      self.trace[name] += 1
    elif event == dispatch.BACKEND_COMPILE_EVENT:
      self.compile[name] += 1

  def snapshot(self):
    return self.trace.copy(), self.compile.copy()


@pytest.fixture
def events():
  ev = _Events()
  jax.monitoring.register_event_duration_secs_listener(ev)
  yield ev
  ev.active = False  # listeners cannot be unregistered through the public API


def test_smoke_search_compiles_each_function_once(events, monkeypatch, tmp_path):
  monkeypatch.setattr(search_lib, "_EVALUATORS", {})  # compile for real, not from other tests
  config = config_lib.make_config("cifar10", "smoke")
  made = []
  real_init = search_lib.BatchEvaluator.__init__

  def counting_init(self, *args, **kwargs):
    made.append(self)
    real_init(self, *args, **kwargs)

  monkeypatch.setattr(search_lib.BatchEvaluator, "__init__", counting_init)
  after_round = {}

  def echo(line):
    if line.startswith("round "):
      after_round[int(line.split()[1].rstrip(":"))] = events.snapshot()

  first = search_cmd.run(config, str(tmp_path / "a"), echo=echo)
  assert len(first["rounds"]) == 3 and sorted(after_round) == [1, 2, 3]
  # One evaluator per indicator (K, R, F, L), each traced and compiled once.
  assert len(made) == 4
  assert events.trace["fn"] == len(made), dict(events.trace)
  assert events.compile["jit(fn)"] == len(made), dict(events.compile)
  assert first["seconds"]["compile"] > 0 and first["seconds"]["compute"] > 0
  # Rounds 2 and 3 reuse everything compiled up to the end of round 1.
  assert after_round[3] == after_round[1], (after_round[3][1] - after_round[1][1])
  assert first["compilation_cache"]["requests"] >= 0 and "enabled" in first["compilation_cache"]

  trace0, compile0 = events.snapshot()
  config.seed = 1
  second = search_cmd.run(config, str(tmp_path / "b"), echo=lambda _: None)
  assert len(made) == 4  # the evaluators are reused
  assert events.trace == trace0, dict(events.trace - trace0)
  assert events.compile == compile0, dict(events.compile - compile0)
  assert second["seconds"]["compile"] == 0.0
