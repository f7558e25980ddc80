"""Every reader of a user-supplied file refuses a damaged one in one line naming the file.

Readers x damage kinds: each reader first reads a good file of its kind (so the fixture is
valid and only the damage differs), then the file cut to half its bytes, the same number of
random bytes, and a well-formed file of another kind (e.g. a profile JSON given as a search's
result.json). The message must be one line, name the path, say what was expected and never
suggest NumPy's ``allow_pickle`` (loading pickled data from an untrusted file can run code).
"""
from __future__ import annotations

import contextlib
import io as io_lib
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from experiments import cli, describe as describe_cmd, export as export_cmd, train as train_cmd
from monas_jax import data, io, space, train
from monas_jax.hardware import calibration, latency

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_3x3~2|")
DAMAGE = ("truncated", "random_bytes", "wrong_kind")


def _checkpoint(path):
  meta = {"config_hash": "0" * 16, "arch_str": CELL, "dataset": "cifar10", "channels": 16,
          "cells_per_stage": 5, "step": 0, "steps_per_epoch": 1, "history": [],
          "epoch_sums": [0.0, 0.0, 0], "seconds": 0.0}
  io.write_arrays_atomic(path, {"leaf00000": np.arange(64, dtype=np.float32)}, meta)


def _profile(path):
  with open(latency.profiles_dir() / "stm32f746.json", "rb") as f:
    raw = f.read()
  with open(path, "wb") as f:
    f.write(raw)


def _result(path):
  with open(path, "w") as f:
    json.dump({"arch_str": CELL, "config_hash": "0" * 16}, f)


def _measurements(path):
  cells = [space.ops_to_arch_str(space.Arch.from_string(CELL).ops)] + [
      space.ops_to_arch_str((o,) * 6) for o in range(1, space.NUM_OPS)]
  calibration.write_measurements(path, cells, [1.0 + i / 7 for i in range(len(cells))])


def _cifar_batch(path):
  # The official layout (a pickled dict, rows channel-major), from real bundled test images.
  x, y = data.load_bundled("cifar10")
  rows = x[:40].transpose(0, 3, 1, 2).reshape(40, -1)
  with open(path, "wb") as f:
    pickle.dump({"data": rows, "labels": [int(v) for v in y[:40]]}, f, protocol=2)


def _arch_file(path):
  with open(path, "w") as f:
    f.write(f"# cells\n{CELL}\n")


# name: (file name, writer of a good file, reader(path), writer of another kind's file, what the
# message must say was expected)
READERS = {
    "checkpoint": ("checkpoint.npz", _checkpoint, lambda p: train.read_checkpoint(p),
                   lambda p: np.savez(p, x=np.zeros(3)), "training checkpoint"),
    "result_json": ("result.json", _result, lambda p: train_cmd.read_arch(None, p), _profile,
                    "result.json"),
    "profile": ("profile.json", _profile, latency.load_profile, _result, "profile"),
    "measurements": ("m.csv", _measurements, calibration.read_measurements, _profile,
                     "arch_str"),
    "dataset_batch": ("test_batch", _cifar_batch, lambda p: data.load_cifar10(
        os.path.dirname(p), "test"), _checkpoint, "pickle"),
    "arch_file": ("cells.txt", _arch_file, lambda p: describe_cmd.read_archs([], p), _cifar_batch,
                  "arch"),
}


def _damage(path, kind, other_writer):
  if kind == "truncated":
    with open(path, "rb") as f:
      raw = f.read()
    with open(path, "wb") as f:
      f.write(raw[:len(raw) // 2])
  elif kind == "random_bytes":
    size = os.path.getsize(path)
    with open(path, "wb") as f:
      f.write(np.random.default_rng(0).bytes(size))
  else:
    other_writer(path)


def _check_message(msg, path, expected):
  assert "\n" not in msg, msg
  assert path in msg, msg
  assert expected in msg, msg
  assert "allow_pickle" not in msg, msg


@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_refuses_damaged_file_naming_it(reader, kind, tmp_path):
  name, write_good, read, write_other, expected = READERS[reader]
  path = str(tmp_path / name)
  write_good(path)
  read(path)  # the good file reads: what fails below is the damage
  _damage(path, kind, write_other)
  with pytest.raises(ValueError) as err:
    read(path)
  _check_message(str(err.value), path, expected)


def test_checkpoint_with_pickled_arrays_is_refused_without_unpickling(tmp_path):
  # What `experiments.export --checkpoint` met: NumPy's message advised allow_pickle=True.
  path = str(tmp_path / "checkpoint.npz")
  np.savez(path, __meta__=np.frombuffer(b"{}", np.uint8),
           leaf00000=np.array([{"not": "an array"}], dtype=object))
  with pytest.raises(ValueError) as err:
    train.read_checkpoint(path)
  _check_message(str(err.value), path, "training checkpoint")
  assert "never loaded" in str(err.value)


def _one_line_exit_2(p, path):
  assert p.returncode == 2, p.stderr
  errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
  assert len(errors) == 1 and path in errors[0], p.stderr
  assert "Traceback" not in p.stderr and "allow_pickle" not in p.stderr, p.stderr


@pytest.mark.parametrize("kind", DAMAGE)
def test_export_inputs_refuse_a_damaged_checkpoint(kind, tmp_path):
  # experiments.export reads the checkpoint in read_inputs, before any compute.
  ckpt = str(tmp_path / train.CHECKPOINT)
  _checkpoint(ckpt)
  assert export_cmd.read_inputs(None, str(tmp_path), "out", [], "cifar10", 0)[0].to_string() == CELL
  _damage(ckpt, kind, lambda p: np.savez(p, x=np.zeros(3)))
  with pytest.raises(ValueError) as err:
    export_cmd.read_inputs(None, str(tmp_path), "out", [], "cifar10", 0)
  _check_message(str(err.value), ckpt, "checkpoint")


def test_export_inputs_refuse_arrays_that_are_not_a_checkpoint(tmp_path):
  # An .npz of write_arrays_atomic whose metadata is not a checkpoint's (e.g. a score_space
  # record file): refused with the path, not a KeyError on 'arch_str'.
  ckpt = str(tmp_path / train.CHECKPOINT)
  io.write_arrays_atomic(ckpt, {"x": np.zeros(3)}, {"what": "not a checkpoint"})
  with pytest.raises(ValueError) as err:
    export_cmd.read_inputs(None, str(tmp_path), "out", [], "cifar10", 0)
  _check_message(str(err.value), ckpt, "checkpoint")
  assert "arch_str" in str(err.value)


@pytest.mark.slow
def test_export_command_refuses_a_random_bytes_checkpoint(tmp_path):
  ckpt = tmp_path / "run" / train.CHECKPOINT
  ckpt.parent.mkdir()
  ckpt.write_bytes(np.random.default_rng(1).bytes(4096))
  p = subprocess.run([sys.executable, "-m", "experiments.export", f"--checkpoint={ckpt.parent}",
                      f"--out={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True,
                     timeout=300)
  _one_line_exit_2(p, str(ckpt))
  assert not (tmp_path / "out").exists()


def _parse_config_flag(path):
  """What a command's flag parsing does with ``--config=path``: (exit status, stderr lines)."""
  # ml_collections loads every config file as module 'config_config' with the old load_module(),
  # which re-runs the file in an existing module of that name: a get_config() left by an earlier
  # load in this process would survive. A command loads one config per process.
  sys.modules.pop("config_config", None)
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "Config file.", flag_values=fv)
  err = io_lib.StringIO()
  with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
    cli.parse_flags(["prog", f"--config={path}"], fv)
  return stop.value.code, err.getvalue().splitlines()


@pytest.mark.parametrize("kind", DAMAGE)
def test_config_file_damage_is_one_line(kind, tmp_path):
  # In-process, the flag parsing of every command (the subprocess run below is marked slow).
  path = str(tmp_path / "config.py")
  with open(os.path.join(ROOT, "configs", "cifar10.py"), "rb") as f:
    raw = f.read()
  with open(path, "wb") as f:
    f.write(raw)
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "Config file.", flag_values=fv)
  assert cli.parse_flags(["prog", f"--config={path}"], fv) == ["prog"]  # the good file loads
  assert fv.config.dataset == "cifar10"
  _damage(path, kind, _result)
  code, lines = _parse_config_flag(path)
  assert code == 2 and len(lines) == 1, lines
  _check_message(lines[0], path, "get_config()")


@pytest.mark.slow
def test_config_damage_from_the_command_line(tmp_path):
  path = str(tmp_path / "config.py")
  with open(path, "wb") as f:
    f.write(np.random.default_rng(2).bytes(2048))
  p = subprocess.run([sys.executable, "-m", "experiments.describe", f"--config={path}",
                      f"--arch={CELL}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  _one_line_exit_2(p, path)
  assert "get_config()" in p.stderr
