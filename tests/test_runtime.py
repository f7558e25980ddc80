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


# ---------------------------------------------------------------- two processes (multi-host)

_SCORE = ["-m", "experiments.score_space", "--config=configs/cifar10.py:smoke",
          "--config.score.ntk=False", "--config.score.proxies=('meco',)",
          "--config.score.extra_proxies=()", "--config.score.sweep_cells=0",
          "--config.score.extra_cells=0"]


def _free_port() -> int:
  import socket
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _records(workdir) -> dict:
  import glob
  out = {}
  for path in glob.glob(os.path.join(workdir, "zc.meco.shard*.jsonl")):
    with open(path) as f:
      for line in f:
        r = json.loads(line)
        out[r["nb201_index"]] = (os.path.basename(path), r["meco"])
  return out


_DIST_SCRIPT = r"""
import json, logging, sys
logging.basicConfig(level=logging.INFO)  # JAX logs the address its coordinator serves on
from experiments import cli
from monas_jax import config as config_lib
c = config_lib.make_config("cifar10", "smoke")
c.runtime.compilation_cache = False
if sys.argv[2] != "-":
  c.runtime.distributed = True
  c.runtime.coordinator_address = "127.0.0.1:" + sys.argv[1]
  c.runtime.num_processes, c.runtime.process_id = 2, int(sys.argv[2])
config_lib.validate(c)
cli.setup_runtime(c)
import jax, jax.numpy as jnp, numpy as np
from experiments.score_space import sample_cells
from monas_jax import benchmark, data
from monas_jax.proxies import indicators
from monas_jax.search.evaluate import BatchEvaluator
# As score_space: this shard's cells, one draw per cell from fold_in(seed, NB201 index).
cells = sample_cells(c.num_cells, c.seed)[c.shard_index::c.num_shards]
ev = BatchEvaluator(indicators.regions_indicator(c).fn,
                    jnp.asarray(data.load_images("cifar10", None)[0]), 1)
ops, base, out = benchmark.load_table().ops, jax.random.key(c.seed), {}
for idx in cells:
  k_data, k_init = jax.random.split(jax.random.fold_in(base, int(idx)))
  out[int(idx)] = float(ev(np.eye(5, dtype=np.float32)[ops[idx]][None], k_data, k_init)[0])
print(json.dumps({"process": [jax.process_index(), jax.process_count()],
                  "shard": [c.shard_index, c.num_shards], "R": out}))
"""


def _launch(args, timeout):
  """Starts the commands together; their (returncode, stdout, stderr), all killed on timeout."""
  procs = [subprocess.Popen(a, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for a in args]
  outs = []
  try:
    for proc in procs:
      out, err = proc.communicate(timeout=timeout)
      outs.append((proc.returncode, out, err))
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  return outs


@pytest.mark.slow
def test_two_processes_give_the_scores_of_one():
  """jax.distributed on loopback (CPU): cli.setup_runtime gives each of 2 processes the shard of
  its process index; together they score the cells of one process, with the same values."""
  port = str(_free_port())
  outs = _launch([[sys.executable, "-c", _DIST_SCRIPT, port, str(i)] for i in range(2)]
                 + [[sys.executable, "-c", _DIST_SCRIPT, port, "-"]], timeout=180)
  for rc, out, err in outs:
    assert rc == 0, err[-2000:]
  res = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in outs]
  assert [r["process"] for r in res] == [[0, 2], [1, 2], [0, 1]]
  assert [r["shard"] for r in res] == [[0, 2], [1, 2], [0, 1]]
  assert f"Starting JAX distributed service on 127.0.0.1:{port}" in outs[0][2]  # loopback only
  one = res[2]["R"]
  assert len(one) == 8 and not set(res[0]["R"]) & set(res[1]["R"])
  assert {**res[0]["R"], **res[1]["R"]} == one  # the same cells, the same values (exactly)


@pytest.mark.slow
def test_two_processes_score_like_one(tmp_path):
  """score_space under jax.distributed on loopback: 2 processes split the cells by process
  index, and with the merge (any shard run again reports on every shard's records) give the
  same values and correlations as one process. About a minute on 2 cores (MeCo compiles in
  each process), so on demand (-m slow)."""
  cache = f"--config.runtime.compilation_cache_dir={tmp_path / 'cache'}"
  one, two = tmp_path / "one", tmp_path / "two"
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, *_SCORE, f"--workdir={two}", cache, "--config.runtime.distributed=True",
       f"--config.runtime.coordinator_address=127.0.0.1:{port}",
       "--config.runtime.num_processes=2", f"--config.runtime.process_id={i}"],
      cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outs = []
  try:
    for proc in procs:
      outs.append(proc.communicate(timeout=180))
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  for i, (proc, (out, err)) in enumerate(zip(procs, outs)):
    assert proc.returncode == 0, err[-2000:]
    assert f"distributed: process {i} of 2" in out, out
  assert f"Starting JAX distributed service on 127.0.0.1:{port}" in outs[0][1]  # loopback only
  # One process (its executable comes from process 0's entry in the compilation cache).
  p = subprocess.run([sys.executable, *_SCORE, f"--workdir={one}", cache], cwd=ROOT, env=_env(),
                     capture_output=True, text=True, timeout=240)
  assert p.returncode == 0, p.stderr[-2000:]
  mine = _records(two)
  assert {f for f, _ in mine.values()} == {"zc.meco.shard0-of-2.jsonl", "zc.meco.shard1-of-2.jsonl"}
  # The merge: one process on the shared workdir scores nothing and reports on both shards.
  p = subprocess.run([sys.executable, *_SCORE, f"--workdir={two}", cache], cwd=ROOT, env=_env(),
                     capture_output=True, text=True, timeout=120)
  assert p.returncode == 0, p.stderr[-2000:]
  ref = _records(one)
  assert sorted(mine) == sorted(ref) and len(ref) == 8
  for idx, (_, v) in ref.items():
    assert abs(mine[idx][1] - v) <= 1e-6 * abs(v), (idx, mine[idx][1], v)
  with open(one / "correlations.json") as f1, open(two / "correlations.json") as f2:
    assert json.load(f2) == json.load(f1)
