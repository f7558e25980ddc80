"""Training: the recipe's optimizer, one run's outputs, and resuming to bit-identical parameters.

A small network (C=4, N=1) on the bundled CIFAR-10 sample keeps this to seconds; the loop, the
step and the checkpoint code are the ones a full C=16, N=5 run uses.
"""
import json
import os
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from monas_jax import benchmark, describe, io, space, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C100_OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SMALL = {"channels": 4, "cells_per_stage": 1, "epochs": 2, "batch_size": 64,
         "checkpoint_every_steps": 1}


def small_config(**over):
  c = train.default_config("cifar10")
  for k, v in {**SMALL, **over}.items():
    c.train[k] = v
  return train.validate_config(c)


def _flags(**over):
  return [f"--config.train.{k}={v}" for k, v in {**SMALL, **over}.items()]


@pytest.fixture(scope="module")
def split():
  return train.load_split(small_config())


@pytest.fixture(scope="module")
def reference(split, tmp_path_factory):
  """An uninterrupted run: (workdir, result)."""
  d = tmp_path_factory.mktemp("uninterrupted")
  result = train.train_and_evaluate(small_config(), C100_OPT, str(d), split, echo=lambda s: None,
                                    quiet=True)
  return d, result


def _arrays(workdir):
  arrays, meta = io.read_arrays(os.path.join(workdir, train.CHECKPOINT))
  return arrays, meta


def _assert_same_state(a, b):
  (xa, ma), (xb, mb) = _arrays(a), _arrays(b)
  assert ma["step"] == mb["step"] and sorted(xa) == sorted(xb)
  for k in xa:  # bit-identical, not close
    np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)
  drop = ("elapsed_seconds", "eval_seconds")
  strip = lambda h: [{k: v for k, v in r.items() if k not in drop} for r in h]  # noqa: E731
  assert strip(ma["history"]) == strip(mb["history"])


def test_recipe_defaults_and_optimizer_matches_pytorch_sgd():
  c = train.default_config()
  t = c.train
  assert (t.channels, t.cells_per_stage, t.epochs, t.batch_size) == (16, 5, 200, 256)
  assert (t.learning_rate, t.momentum, t.nesterov, t.weight_decay) == (0.1, 0.9, True, 5e-4)
  # Two steps of torch.optim.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd), by hand.
  tx = train.make_optimizer(c, total_steps=4)
  p = {"w": jnp.array([1.0, -2.0])}
  g = {"w": jnp.array([0.5, 0.25])}
  s = tx.init(p)
  buf = np.zeros(2)
  w = np.array([1.0, -2.0])
  for step in range(2):
    lr = 0.1 * 0.5 * (1 + np.cos(np.pi * step / 4))
    d = np.array([0.5, 0.25]) + 5e-4 * w
    buf = 0.9 * buf + d
    w = w - lr * (d + 0.9 * buf)
    u, s = tx.update(g, s, p)
    p = optax.apply_updates(p, u)
  np.testing.assert_allclose(p["w"], w, rtol=1e-6)


def test_bad_config_fails_before_compute():
  c = train.default_config()
  c.train.batch_size = 0
  with pytest.raises(ValueError, match="config.train.batch_size = 0"):
    train.validate_config(c)
  c = train.default_config("imagenet16_120")
  with pytest.raises(ValueError, match="config.data_dir"):
    train.validate_config(c)


def test_holdout_split_is_stratified_and_disjoint(split):
  assert len(split.y_train) == 1600 and len(split.y_eval) == 400
  assert np.bincount(split.y_eval).tolist() == [40] * 10
  assert "held out" in split.source


def test_run_writes_metrics_plot_checkpoint_and_result(reference, split):
  d, r = reference
  lines = (d / train.METRICS).read_text().splitlines()
  assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
  assert (d / train.PLOT).stat().st_size > 5000
  with open(d / train.RESULT) as f:
    assert json.load(f) == json.loads(json.dumps(r))
  assert r["steps"] == 2 * (1600 // 64) and r["eval_split"] == "held-out"
  assert r["seconds_per_step"] > 0 and r["seconds_per_epoch"] > 0
  assert r["nb201_index"] == 9930
  # A C=4, N=1 network is not NAS-Bench-201's C=16, N=5: no benchmark accuracy, one line on why.
  assert "nb201_test_acc" not in r and r["ground_truth"].startswith("no ground truth")
  assert "C=4, N=1" in r["ground_truth"]
  # At the benchmark's network and dataset the lookup applies (train.train_and_evaluate gives
  # benchmark.lookup's accuracies then).
  assert describe.ground_truth_unavailable("cifar10", 16, 5) is None
  assert benchmark.lookup(space.Arch.from_string(r["arch_str"]))["cifar100_test_acc"] == (
      pytest.approx(73.51, abs=0.01))
  # It learns something in 50 small steps: the held-out loss is below chance (ln 10 = 2.30).
  assert r["final_eval_loss"] < 2.25
  # The checkpoint's parameters give the reported held-out accuracy.
  params, stats, meta = train.read_checkpoint_variables(str(d / train.CHECKPOINT))
  net = train.make_network(small_config(), C100_OPT)
  ev = train.evaluate(train.make_eval_step(net, "cifar10"),
                      train.TrainState(jnp.zeros(()), params, stats, None),
                      jnp.asarray(split.x_eval), jnp.asarray(split.y_eval), 500)
  assert ev["accuracy"] == pytest.approx(r["final_eval_accuracy"], abs=1e-9)


def test_stop_at_max_steps_then_continue_is_bit_identical(reference, split, tmp_path):
  d, _ = reference
  quiet = dict(echo=lambda s: None, quiet=True)
  # Step 7 is inside epoch 1; then step 33 inside epoch 2 (past an evaluation); then the end.
  for limit in (7, 33):
    assert train.train_and_evaluate(small_config(max_steps=limit), C100_OPT, str(tmp_path),
                                    split, **quiet) is None
    assert _arrays(tmp_path)[1]["step"] == limit
  r = train.train_and_evaluate(small_config(), C100_OPT, str(tmp_path), split, **quiet)
  assert r["steps"] == 50
  _assert_same_state(d, tmp_path)


def test_another_config_in_the_same_workdir_is_refused(reference, split):
  d, _ = reference
  with pytest.raises(ValueError, match="belongs to another run"):
    train.train_and_evaluate(small_config(learning_rate=0.05), C100_OPT, str(d), split,
                             echo=lambda s: None, quiet=True)


@pytest.mark.slow
def test_killed_command_restarts_to_the_same_parameters(reference, tmp_path):
  """SIGKILL the command mid-epoch (any moment, even inside a checkpoint write), run it again."""
  d, _ = reference
  cmd = [sys.executable, "-m", "experiments.train", f"--arch={C100_OPT}", *_flags(),
         f"--workdir={tmp_path}", "--quiet"]
  # A persistent compilation cache lets the restart skip compiling (the same executable runs).
  env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  work = tmp_path / "run"
  cmd[-2] = f"--workdir={work}"
  p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env)
  ckpt = work / train.CHECKPOINT
  deadline = time.time() + 240
  killed_at = None
  while time.time() < deadline and p.poll() is None:
    if ckpt.exists():
      step = _arrays(work)[1]["step"]
      if step >= 30:  # inside epoch 2 (25 steps an epoch)
        p.send_signal(signal.SIGKILL)
        p.wait()
        killed_at = step
        break
    time.sleep(0.02)
  assert killed_at is not None, f"not killed mid-run (rc {p.returncode}): {p.stderr.read()}"
  assert not (work / train.RESULT).exists()
  q = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert q.returncode == 0, q.stderr
  assert "resuming from" in q.stderr
  _assert_same_state(d, work)
