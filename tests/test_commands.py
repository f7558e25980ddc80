"""The command-line shell: describe (subprocess, as a user runs it), score_space and sweep."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import score_space, sweep
from monas_jax import benchmark, config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _describe(*args):
  return subprocess.run([sys.executable, "-m", "experiments.describe",
                         "--config=configs/cifar10.py", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


def test_describe_arch_file_and_repeated_arch(tmp_path):
  f = tmp_path / "cells.txt"
  f.write_text("# a comment\n" + "\n".join(benchmark.load_table().arch_str[:3]) + "\n")
  p = _describe(f"--arch={GOOD}", f"--arch_file={f}")
  assert p.returncode == 0, p.stderr
  rows = [json.loads(line) for line in p.stdout.splitlines()]
  assert [r["nb201_index"] for r in rows] == [7632, 0, 1, 2]
  r = rows[0]
  for k in ("arch_str", "flops_M", "params_M", "flash_bytes_int8", "peak_sram_bytes_int8",
            "cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"):
    assert k in r
  assert r["latency_ms"]["stm32f746"] == pytest.approx(42.48, abs=5e-3)
  assert set(r["fits"]) == {"stm32f746", "stm32l432"}
  assert r["flops_M"] == pytest.approx(benchmark.lookup(GOOD)["flops_c10_M"], abs=1e-3)


def test_describe_bad_arch_fails_clearly(tmp_path):
  p = _describe("--arch=|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|")
  assert p.returncode != 0 and "nor_conv_5x5" in p.stderr and p.stdout == ""
  f = tmp_path / "cells.txt"
  f.write_text(GOOD + "\n|none~0|+|none~0|\n")
  p = _describe(f"--arch_file={f}")
  assert p.returncode != 0 and f"{f}:2" in p.stderr and p.stdout == ""


def test_condition_numbers_from_spectrum():
  ev = np.array([[1e-3, 0.5, 1.0, 2.0], [0.0, 0.0, 1.0, 4.0]])
  k = score_space.condition_numbers(ev, 2)
  np.testing.assert_allclose(k[0], [2000.0, 4.0, 2.0])
  assert k[1, 0] == np.finfo(np.float32).max and k[1, 2] == 4.0  # 4 / 0: singular, not 1e5
  neg = score_space.condition_numbers(np.array([[-1e-7, 0.5, 2.0], [0.0, 0.0, 0.0]]), 1)
  assert neg[0, 0] == np.finfo(np.float32).max and neg[0, 1] == 4.0  # never a negative K
  assert neg[1, 0] == 1e5  # 0 / 0 is NaN: TE-NAS's 1e5


@pytest.mark.slow
def test_score_space_smoke_resumes_and_reports(tmp_path):
  c = config_lib.make_config("cifar10", "smoke")
  c.score.batch_sizes = (c.ntk.batch_size,)  # no extra compile in the fast suite
  c.score.proxies = c.score.extra_proxies = ()  # proxies: test_score_space_proxies
  c.num_shards = 2
  lines = []
  assert score_space.run(c, str(tmp_path), echo=lines.append) is None  # shard 0 of 2 only
  c.shard_index = 1
  corr = score_space.run(c, str(tmp_path), echo=lines.append)
  assert set(corr) == {"K0", "K1", "K2", "K3", "R", "F", "tenas", "flops", "params", "composed"}
  assert corr["composed"]["kendall_tau"] == -corr["tenas"]["kendall_tau"]  # mode monas
  # Top-end metrics of the composed score against every dataset (8 cells: no pools of 64).
  te = corr["composed"]["top_end"]
  assert te == corr["tenas"]["top_end"] and set(te) == {"cifar10", "cifar100", "imagenet16_120"}
  assert {"precision_top5pct", "tau_true_top10pct", "best_scored_acc",
          "ndcg"} <= set(te["cifar10"]) and "best_of_64_mean" not in te["cifar10"]
  assert te["cifar10"]["tau_true_top10pct"] is None  # 1 cell in the true top 10 % of 8
  assert "top_end" in corr["R"] and "top_end" in corr["flops"]
  with open(tmp_path / "correlations.json") as f:
    assert json.load(f) == corr
  assert (tmp_path / "sweeps.png").stat().st_size > 1000
  recs = sum(1 for p in tmp_path.glob("records.*.jsonl") for _ in open(p))
  assert recs == c.num_cells
  # A restart scores nothing again; a line cut by a crash is scored again.
  p = tmp_path / "records.shard1-of-2.jsonl"
  text = p.read_text().splitlines()
  p.write_text("\n".join(text[:-1]) + "\n" + text[-1][:20])
  lines.clear()
  score_space.run(c, str(tmp_path), echo=lines.append)
  assert any("1 cells to score" in line for line in lines)
  c.score.sweep_cells = 0  # no batch-size sweep: the report still works
  assert set(score_space.run(c, str(tmp_path), echo=lines.append)) == set(corr)


def test_sweep_settings_and_pareto():
  assert sweep.parse_setting("baseline") == (0.0, 0.0)
  assert sweep.parse_setting("lambda0.7") == (0.7, 0.0)
  assert sweep.parse_setting("mu0.8") == (0.0, 0.8)
  for bad in ("mu1.5", "nu0.3", "mu"):
    with pytest.raises(ValueError):
      sweep.parse_setting(bad)
  lat = np.array([1.0, 2.0, 3.0, 2.5])
  acc = np.array([50.0, 60.0, 55.0, 70.0])
  assert sweep.pareto_front(lat, acc).tolist() == [0, 1, 3]


@pytest.mark.parametrize("args, message", [
    (["--config=configs/cifar10.py", "--config.search.latency_weight=1.5"],
     "config.search.latency_weight = 1.5"),
    (["--config=configs/imagenet16_120.py"], "config.data_dir = None"),
    (["--config=configs/cifar100.py", "--config.data_dir=/nonexistent/c100"],
     "/nonexistent/c100"),
])
def test_search_command_fails_before_compute(tmp_path, args, message):
  p = subprocess.run([sys.executable, "-m", "experiments.search", *args,
                      f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                     timeout=300)
  assert p.returncode == 2 and message in p.stderr, p.stderr
  assert not (tmp_path / "checkpoint.json").exists()


def test_sweep_budget_setting_and_pareto_gap():
  assert sweep.parse_setting("budget12") == (0.0, 0.0) and sweep.parse_budget("budget12") == 12.0
  assert sweep.parse_budget("mu0.8") is None
  lat = np.array([1.0, 2.0, 3.0])
  acc = np.array([50.0, 70.0, 60.0])
  assert sweep.best_no_slower(lat, acc, 2.5) == 70.0
  assert np.isnan(sweep.best_no_slower(lat, acc, 0.5))
  # A real cell: the gap is >= 0 and 0 for a cell on the STM32F746 front.
  t = benchmark.load_table()
  lat_all = sweep._latency_all("stm32f746")
  acc_all = t.columns["cifar10_test_acc"]
  best = int(np.argmax(acc_all))
  res = {"arch_str": t.arch_str[best], "cell": {a: float(t.columns[a][best]) for a in sweep.ACC}}
  g = sweep.pareto_gaps(res, "stm32f746", budget_ms=float(lat_all.min()) + 5)
  assert g["gap_cifar10_test_acc"] == 0.0
  assert g["budget_gap_cifar10_test_acc"] < 0  # the optimum is far slower than that budget
  assert all(v >= 0 for k, v in g.items() if k.startswith("gap_"))


def _cell_result(index: int, seed: int) -> dict:
  """A search result's fields the sweep reads, for NAS-Bench-201 cell ``index``."""
  t = benchmark.load_table()
  lat = {m: float(sweep._latency_all(m)[index]) for m in sweep.MCUS}
  cell = {"flops_M": float(t.columns["flops_c10_M"][index]),
          "params_M": float(t.columns["params_c10_M"][index]), "latency_ms": lat,
          **{a: float(t.columns[a][index]) for a in sweep.ACC}}
  return {"seed": seed, "arch_str": t.arch_str[index], "cell": cell,
          "seconds": {"compile": 1.0, "compute": 2.0}}


def test_sweep_aggregate_speedup_only_against_a_baseline_of_the_same_seed():
  """Budget-only sweeps (no baseline setting) aggregate without the speedup column."""
  fast, slow = _cell_result(186, 0), _cell_result(6336, 0)
  rows = sweep.aggregate({"budget10": [slow]})
  assert "speedup_stm32f746" not in rows["budget10"]
  assert rows["budget10"]["latency_stm32f746_ms"]["mean"] == slow["cell"]["latency_ms"]["stm32f746"]
  rows = sweep.aggregate({"baseline": [slow], "mu0.8": [fast, _cell_result(186, 1)]})
  # Seed 1 has no baseline run: its speedup is left out, not compared with seed 0's cell.
  assert rows["mu0.8"]["speedup_stm32f746"]["values"] == [pytest.approx(
      slow["cell"]["latency_ms"]["stm32f746"] / fast["cell"]["latency_ms"]["stm32f746"])]
  assert "| budget10 |" in sweep.markdown(config_lib.make_config("cifar10"),
                                           sweep.aggregate({"budget10": [slow]}), [0])


def test_score_space_command_runs_no_batch_size_sweep_unasked(tmp_path):
  """Asking for scores does not start the NTK batch-size sweep (it costs ~25 minutes)."""
  p = subprocess.run([sys.executable, "-m", "experiments.score_space",
                      "--config=configs/cifar10.py", "--config.num_cells=3",
                      "--config.score.ntk=False", "--config.score.proxies=('meco',)",
                      "--config.score.extra_proxies=()", f"--workdir={tmp_path}",
                      # A small scoring network (the default's sweep_cells is what is checked).
                      "--config.zc.channels=4", "--config.zc.cells_per_stage=1",
                      "--config.zc.batch_size=8"],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-2000:]
  assert "batch-size sweep" not in p.stdout + p.stderr
  assert not list(tmp_path.glob("batch*.jsonl"))
  assert "| meco | 3 |" in p.stdout and (tmp_path / "correlations.json").exists()


def test_sweep_command_shows_and_records_the_data_source(tmp_path):
  p = subprocess.run([sys.executable, "-m", "experiments.sweep",
                      "--config=configs/cifar10.py:smoke", "--seeds=0,1", "--settings=baseline",
                      # The command, not the indicators: FLOPs alone compiles in seconds.
                      "--config.search.mode=ensemble", "--config.ensemble.indicators=('flops',)",
                      "--config.ensemble.weights=(1.0,)", f"--workdir={tmp_path}"],
                     cwd=ROOT, capture_output=True, text=True,
                     timeout=900)
  assert p.returncode == 0, p.stderr[-2000:]
  assert "data: no config.data_dir given, using the bundled sample" in p.stdout
  md = (tmp_path / "sweep.md").read_text()
  assert "data: bundled:cifar10_test_sample.npz" in md and "sample std (ddof 1)" in md
  rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]["baseline"]
  assert rows["data_source"] == ["bundled:cifar10_test_sample.npz (2000 CIFAR-10 test images)"]
  v = rows["cifar10_test_acc"]["values"]
  assert rows["cifar10_test_acc"]["std"] == pytest.approx(np.std(v, ddof=1))
  assert "gap_cifar10_test_acc" in rows
