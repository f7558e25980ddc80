"""Runtime setup (experiments.cli.setup_runtime): the persistent compilation cache and
multi-host initialisation, as subprocesses (both are decided once per process)."""
import json
import os
import subprocess
import sys

import pytest

from experiments import cli
from monas_jax import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in (cli.CACHE_ENV, "XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, **extra)
  return env


# ---------------------------------------------------------------- compilation cache

_CACHE_SCRIPT = r"""
import json, sys
from experiments import cli
from monas_jax import config as config_lib
c = config_lib.make_config("cifar10", "smoke")
c.runtime.compilation_cache_dir = sys.argv[1]
c.runtime.compilation_cache = sys.argv[2] == "on"
cli.setup_runtime(c, echo=lambda _: None)
import jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.tanh(x) @ x.T + 1.0)
f(jnp.ones((8, 8))).block_until_ready()
print(json.dumps(cli.compilation_cache_info()))
"""


def _compile(cache_dir, on: bool) -> dict:
  p = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT, str(cache_dir), "on" if on else "off"],
                     cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
  assert p.returncode == 0, p.stderr[-2000:]
  return json.loads(p.stdout.strip().splitlines()[-1])


def test_compilation_cache_is_written_then_read_and_can_be_disabled(tmp_path):
  cache = tmp_path / "cache"
  first = _compile(cache, True)
  assert first["enabled"] and first["dir"] == str(cache)
  assert first["requests"] >= 1 and first["hits"] == 0
  entries = os.listdir(cache)
  assert entries, "the first compile wrote no cache entry"
  second = _compile(cache, True)  # a new process, the same function: served from the cache
  assert second["hits"] >= 1 and second["hits"] == second["requests"]
  assert sorted(os.listdir(cache)) == sorted(entries)  # nothing new written
  off = tmp_path / "off"
  off.mkdir()
  info = _compile(off, False)
  assert not info["enabled"] and info["requests"] == 0
  assert os.listdir(off) == []


def test_cache_dir_precedence(monkeypatch, tmp_path):
  c = config_lib.make_config("cifar10", "smoke")
  monkeypatch.delenv(cli.CACHE_ENV, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert cli.cache_dir_for(c) == str(tmp_path / "xdg" / "monas_jax" / "jax_cache")
  monkeypatch.setenv(cli.CACHE_ENV, str(tmp_path / "env"))
  assert cli.cache_dir_for(c) == str(tmp_path / "env")
  c.runtime.compilation_cache_dir = str(tmp_path / "cfg")
  assert cli.cache_dir_for(c) == str(tmp_path / "cfg")  # the config field wins
  c.runtime.compilation_cache = False
  assert cli.cache_dir_for(c) is None
  c = config_lib.make_config("cifar10", "smoke")
  monkeypatch.setenv(cli.CACHE_ENV, "off")
  assert cli.cache_dir_for(c) is None


@pytest.mark.parametrize("field,value,match", [
    ("compilation_cache_dir", "", "runtime.compilation_cache_dir"),
    ("compilation_cache_dir", " ", "runtime.compilation_cache_dir"),
    ("num_processes", 2, "unless runtime.distributed"),
])
def test_runtime_validation(field, value, match):
  c = config_lib.make_config("cifar10", "smoke")
  c.runtime[field] = value
  with pytest.raises(ValueError, match=match):
    config_lib.validate(c)


def test_distributed_fields_come_together():
  c = config_lib.make_config("cifar10", "smoke")
  c.runtime.distributed = True
  config_lib.validate(c)  # all None: auto-detect
  c.runtime.coordinator_address = "127.0.0.1:1234"
  with pytest.raises(ValueError, match="runtime.num_processes"):
    config_lib.validate(c)
  c.runtime.num_processes, c.runtime.process_id = 2, 2
  with pytest.raises(ValueError, match="runtime.process_id"):
    config_lib.validate(c)
  c.runtime.process_id = 1
  config_lib.validate(c)
  c.runtime.coordinator_address = "localhost"
  with pytest.raises(ValueError, match="host:port"):
    config_lib.validate(c)
