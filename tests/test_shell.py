"""Shell defects every command shares, run as a user runs them (subprocesses): bad input ends in
one line on stderr and exit status 2, before any compute."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


def _one_line_exit_2(p, message):
  assert p.returncode == 2, p.stderr
  lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
  assert len(lines) == 1 and message in lines[0], p.stderr
  assert "Traceback" not in p.stderr


@pytest.mark.parametrize("module, extra", [
    ("experiments.describe", [f"--arch={CELL}"]),
    ("experiments.search", []),
    ("experiments.train", [f"--arch={CELL}"]),
])
def test_missing_config_file_is_one_line(module, extra, tmp_path):
  p = _run(module, "--config=configs/nope.py", *extra, f"--workdir={tmp_path}"
           if module != "experiments.describe" else "--arch_file=")
  _one_line_exit_2(p, "configs/nope.py")
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--config=configs/cifar10.py:nope"], "config variant must be one of ('', 'smoke'), got 'nope'"),
    (["--config=configs/cifar10.py", "--config.search.bogus=1"],
     "--config.search.bogus: the config has no field 'bogus'"),
])
def test_bad_config_flag_is_one_line(args, message, tmp_path):
  p = _run("experiments.search", *args, f"--workdir={tmp_path}")
  _one_line_exit_2(p, message)
  assert not os.listdir(tmp_path)


def test_describe_imagenet16_needs_no_data_dir():
  p = _run("experiments.describe", "--config=configs/imagenet16_120.py", f"--arch={CELL}")
  assert p.returncode == 0, p.stderr
  rec = json.loads(p.stdout.splitlines()[0])
  assert rec["dataset"] == "imagenet16_120" and rec["imagenet16_120_test_acc"] > 40


def test_regions_channels_other_than_one_is_refused(tmp_path):
  p = _run("experiments.search", "--config=configs/cifar10.py:smoke",
           "--config.regions.channels=2", f"--workdir={tmp_path}")
  _one_line_exit_2(p, "config.regions.channels = 2")


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --arch"),
    ([f"--arch={CELL}", "--config.train.epochs=0"], "config.train.epochs = 0"),
    ([f"--arch={CELL}", "--config.data_dir=/nonexistent/c10"], "/nonexistent/c10"),
    (["--from_result=/nonexistent/result.json"], "/nonexistent/result.json"),
    (["--config=configs/train.py:imagenet16_120", f"--arch={CELL}"], "config.data_dir"),
    (["--config=configs/cifar10.py", f"--arch={CELL}"], "no 'train' section"),
    (["--config=configs/train.py:mnist", f"--arch={CELL}"], "config.dataset = 'mnist'"),
])
def test_train_command_fails_before_compute(args, message, tmp_path):
  p = _run("experiments.train", *args, f"--workdir={tmp_path}")
  _one_line_exit_2(p, message)
  assert not os.listdir(tmp_path)
