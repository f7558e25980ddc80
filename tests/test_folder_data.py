"""A user's own images (issue 22): image folders and .npz archives, their errors, and the network
size they are searched for.

Every folder here holds real PNG (and JPEG, BMP) files written by Pillow from the bundled CIFAR-10
sample (``benchmarks/make_image_folder.py``). The consistency check searches the sample written
out as a folder with NAS-Bench-201's statistics and expects the cell, and every round's values,
of ``configs/cifar10.py`` with the same seed, in both modes, at the smoke size.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmarks import make_image_folder
from experiments import search as search_cmd
from monas_jax import config as config_lib, data, search as search_lib
from monas_jax.describe import describe_cell
from monas_jax.hardware import latency, memory
from monas_jax.proxies import cost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_3x3~2|")


def folder_config(data_dir, variant="smoke", **fields):
  c = config_lib.make_config("folder", variant)
  c.data_dir = str(data_dir)
  for k, v in fields.items():
    c[k] = v
  return c


@pytest.fixture(scope="module")
def sample():
  return data.load_bundled("cifar10")


@pytest.fixture(scope="module")
def c10_folder(tmp_path_factory):
  """The whole bundled sample as PNG files, in train/ and in test/ (split 'all')."""
  out = tmp_path_factory.mktemp("c10png")
  make_image_folder.write_image_folder(str(out), split="all")
  return out


@pytest.fixture(scope="module")
def gray48(tmp_path_factory):
  """3 classes at 48x48 grayscale (10 train, 3 test a class), plus one JPEG and one BMP of other
  sizes in RGB, and a file of another type."""
  out = tmp_path_factory.mktemp("gray48")
  make_image_folder.write_image_folder(str(out), classes=3, size=48, grayscale=True,
                                       per_class=13, test_fraction=3 / 13)
  x, _ = data.load_bundled("cifar10")
  big = np.asarray(Image.fromarray(x[5]).resize((64, 40)))  # RGB, not square, not 48
  Image.fromarray(big).save(out / "train" / "1_automobile" / "zz_big.jpg", quality=95)
  Image.fromarray(x[6]).save(out / "train" / "2_bird" / "zz_small.bmp")
  (out / "train" / "0_airplane" / "notes.txt").write_text("not an image")
  return out


def _copy_tree(src, dst):
  import shutil
  shutil.copytree(src, dst)
  return dst


# ---------------------------------------------------------------------------------------------
# Readers.

def test_folder_reads_back_the_sample_exactly(c10_folder, sample):
  c = folder_config(c10_folder, norm_mean=data.MEAN["cifar10"], norm_std=data.STD["cifar10"])
  config_lib.validate(c)
  im = data.read_config_images(c)
  x, y = sample
  # PNG is lossless and the files are named by their index: same pixels, same order, same labels.
  np.testing.assert_array_equal(im.x_train, x)
  np.testing.assert_array_equal(im.y_train, y)
  np.testing.assert_array_equal(im.x_test, x)
  assert im.spec == data.builtin_spec("cifar10") and im.spec.name == "folder"
  rec = im.record
  assert rec["classes"] == [f"{k}_{n}" for k, n in enumerate(data.CIFAR10_CLASSES)]
  assert rec["class_counts"] == {"train": [200] * 10, "test": [200] * 10}
  assert rec["norm_stats"] == "given in the config" and rec["skipped_files"] == 0
  assert rec["source"].startswith(f"folder:{c10_folder} (train 2000 images, test 2000")


def test_grayscale_48_folder_resizes_converts_and_skips(gray48, sample):
  c = folder_config(gray48, image_size=48, image_channels=1)
  config_lib.validate(c)
  im = data.read_config_images(c)
  assert im.x_train.shape == (32, 48, 48, 1) and im.x_test.shape == (9, 48, 48, 1)
  assert im.x_train.dtype == np.uint8 and im.y_train.dtype == np.int32
  assert im.record["class_counts"] == {"train": [10, 11, 11], "test": [3, 3, 3]}
  assert im.record["skipped_files"] == 1 and im.record["skipped_examples"][0].endswith("notes.txt")
  # The statistics are the training split's, one channel.
  mean, std = data.channel_stats(im.x_train)
  assert im.spec.mean == mean and im.spec.std == std and len(mean) == 1
  np.testing.assert_allclose(mean[0], im.x_train.mean() / 255, rtol=1e-9)
  np.testing.assert_allclose(std[0], im.x_train.std() / 255, rtol=1e-9)
  assert im.spec.pad == 6 and im.spec.num_classes == 3
  # The 64x40 RGB JPEG came out 48x48 luma: Pillow's own conversion and resize of the file.
  with Image.open(gray48 / "train" / "1_automobile" / "zz_big.jpg") as f:
    want = np.asarray(f.convert("L").resize((48, 48), Image.BILINEAR))
  assert any(np.array_equal(xi[..., 0], want) for xi in im.x_train)
  # The input functions take the spec: one channel, normalised with those statistics.
  xb = np.asarray(data.sample_batch(__import__("jax").random.key(0), im.x_train, 4, im.spec))
  assert xb.shape == (4, 48, 48, 1) and xb.dtype == np.float32


def test_npz_matches_the_folder_it_was_written_from(gray48, tmp_path):
  im = data.read_config_images(folder_config(gray48, image_size=48, image_channels=1))
  path = tmp_path / "gray.npz"
  np.savez(path, x_train=im.x_train[..., 0], y_train=im.y_train, x_test=im.x_test,
           y_test=im.y_test, class_names=np.array(im.record["classes"]))
  got = data.read_config_images(folder_config(path, image_size=48, image_channels=1))
  np.testing.assert_array_equal(got.x_train, im.x_train)
  np.testing.assert_array_equal(got.y_test, im.y_test)
  assert got.spec == im.spec and got.record["classes"] == im.record["classes"]
  assert got.source.startswith(f"npz:{path}")
  # Grayscale to RGB repeats the channel; 48 -> 32 resizes.
  rgb = data.read_config_images(folder_config(path, image_size=32, image_channels=3))
  assert rgb.x_train.shape == (32, 32, 32, 3)
  np.testing.assert_array_equal(rgb.x_train[..., 0], rgb.x_train[..., 2])


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the path and what was expected, before anything is compiled.

def _write_png(path, pixels):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(pixels).save(path)


def _damage(case, root, sample):
  """Builds the bad dataset of ``case`` under ``root``; returns (data_dir, text the message must
  hold)."""
  x, _ = sample
  if case == "empty_folder":
    os.makedirs(root / "train")
    os.makedirs(root / "test")
    return root, f"{root / 'train'}: no class folders (it is empty)"
  if case == "nothing_at_all":
    os.makedirs(root)
    return root, f"{root}: no train/ folder (found: nothing, it is empty)"
  for split in ("train", "test"):
    for k, name in enumerate(("cat", "dog")):
      _write_png(str(root / split / name / f"{k}.png"), x[k])
  if case == "single_class":
    import shutil
    shutil.rmtree(root / "train" / "dog")
    shutil.rmtree(root / "test" / "dog")
    return root, "only one class folder ('cat')"
  if case == "class_missing_from_test":
    import shutil
    shutil.rmtree(root / "test" / "dog")
    return root, f"{root / 'test'}: class folder(s) 'dog' of train/ missing"
  if case == "empty_class":
    os.remove(root / "test" / "dog" / "1.png")
    return root, f"{root / 'test' / 'dog'}: class 'dog' has no image files in the test split"
  if case == "corrupt_image":
    good = (root / "train" / "dog" / "1.png").read_bytes()
    (root / "train" / "dog" / "1.png").write_bytes(good[:len(good) // 2])
    return root, f"{root / 'train' / 'dog' / '1.png'}: not a readable PNG, JPEG or BMP image"
  raise AssertionError(case)


def _npz_damage(case, tmp_path, sample):
  x, y = sample
  x, y = x[:12], (np.arange(12) % 3).astype(np.int64)
  p = tmp_path / f"{case}.npz"
  arrays = dict(x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
  if case == "npz_missing_array":
    del arrays["y_test"]
    want = f"{p}: lacks y_test (found x_test, x_train, y_train)"
  elif case == "npz_mismatched_lengths":
    arrays["y_train"] = y[:11]
    want = f"{p}: y_train has 11 labels for 12 images in x_train"
  elif case == "npz_label_out_of_range":
    arrays["y_test"] = np.array([0, 1, 2, 3, 0, 1])
    want = f"{p}: y_test holds label 3, outside the classes 0 .. 2 of y_train"
  elif case == "npz_label_beyond_class_names":
    arrays["class_names"] = np.array(["a", "b"])
    want = f"{p}: y_train holds label 2, outside the 2 class_names"
  elif case == "npz_not_an_archive":
    p.write_bytes(b"PK\x03\x04 truncated")
    return p, f"{p}: not a .npz of uint8 images"
  else:
    raise AssertionError(case)
  np.savez(p, **arrays)
  return p, want


FOLDER_CASES = ("empty_folder", "nothing_at_all", "single_class", "class_missing_from_test",
                "empty_class", "corrupt_image")
NPZ_CASES = ("npz_missing_array", "npz_mismatched_lengths", "npz_label_out_of_range",
             "npz_label_beyond_class_names", "npz_not_an_archive")


@pytest.mark.parametrize("case", FOLDER_CASES + NPZ_CASES)
def test_bad_dataset_fails_in_one_line_before_any_compile(case, tmp_path, sample, monkeypatch):
  if case.startswith("npz"):
    data_dir, want = _npz_damage(case, tmp_path, sample)
  else:
    data_dir, want = _damage(case, tmp_path / "ds", sample)

  def no_compile(*args, **kwargs):
    raise AssertionError("compiled before the data were checked")

  monkeypatch.setattr(search_lib, "BatchEvaluator", no_compile)
  with pytest.raises((ValueError, FileNotFoundError)) as err:
    search_cmd.run(folder_config(data_dir), str(tmp_path / "run"), echo=lambda s: None)
  msg = str(err.value)
  assert want in msg and "\n" not in msg
  assert not os.path.exists(tmp_path / "run" / "result.json")


def test_command_reports_a_bad_folder_in_one_line(tmp_path, sample):
  data_dir, want = _damage("class_missing_from_test", tmp_path / "ds", sample)
  p = subprocess.run([sys.executable, "-m", "experiments.search", "--config=configs/folder.py",
                      f"--config.data_dir={data_dir}", f"--workdir={tmp_path / 'run'}"],
                     cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert p.returncode == 2
  lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
  assert len(lines) == 1 and want in lines[0]


@pytest.mark.parametrize("field, value, message", [
    ("image_size", 50, "config.image_size = 50 is not allowed: None"),
    ("image_channels", 2, "config.image_channels = 2"),
    ("norm_mean", (0.5, 0.5), "config.norm_mean = (0.5, 0.5)"),
    ("data_dir", None, "config.data_dir = None is not allowed: an image folder"),
])
def test_bad_data_fields(field, value, message, tmp_path):
  c = folder_config(tmp_path)
  c[field] = value
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.validate(c)


# ---------------------------------------------------------------------------------------------
# The network the user deploys.

def test_latency_is_scaled_and_ground_truth_not_claimed_at_another_size(tmp_path):
  c = folder_config(tmp_path, image_size=48, image_channels=1)
  c.network.channels, c.network.cells_per_stage = 8, 3
  c.search.latency_weight, c.search.latency_budget_ms = 0.5, 20.0
  config_lib.validate(c)  # mu and a latency budget: the scaled table gives L at this size
  c.num_classes, c.norm_mean, c.norm_std = 3, (0.5,), (0.25,)  # as resolve_config fills them in
  spec = data.config_spec(c)
  rec = describe_cell(CELL, spec, 8, 3)
  assert set(rec["latency_ms"]) == set(latency.builtin_profiles())
  for name, line in rec["latency_provenance"].items():
    assert line.startswith(f"scaled from {name} measured at 32x32x3, C=16, N=5 to 48x48x1, C=8, "
                           "N=3")
    assert rec["latency_ms"][name] == latency.estimate_ms(
        latency.network_profile(name, spec, 8, 3), CELL)
  assert "cifar10_test_acc" not in rec and rec["ground_truth"].startswith("no ground truth")
  assert rec["network"] == {"channels": 8, "cells_per_stage": 3, "image_size": 48,
                            "image_channels": 1, "num_classes": 3}
  # NAS-Bench-201's own setting keeps its accuracies and tables.
  native = describe_cell(CELL, "cifar10")
  assert native["cifar10_test_acc"] > 90 and "ground_truth" not in native
  assert native["latency_ms"] == {n: latency.estimate_ms(n, CELL)
                                  for n in latency.builtin_profiles()}


def test_cost_and_memory_follow_size_channels_c_and_n():
  spec = data.DataSpec("folder", 48, 1, 3, (0.5,), (0.25,), 6)
  small = memory.deployment_memory(CELL, spec, 8, 3)
  # The stem's output (48 x 48 x C bytes in int8) is live beside its input at the first step.
  assert small["peak_sram_bytes_int8"] >= 48 * 48 * 8 + 48 * 48 * 1
  bench = memory.deployment_memory(CELL, "cifar10", 16, 5)
  assert small["flash_bytes_int8"] < bench["flash_bytes_int8"]
  # FLOPs from the layer shapes: the stem conv of a 1-channel input is 48*48*9*1*C MACs.
  t1 = cost.cost_table(spec, 8, 3)
  t3 = cost.cost_table(data.DataSpec("folder", 48, 3, 3, (0.5,) * 3, (0.25,) * 3, 6), 8, 3)
  assert t3.base_flops_M - t1.base_flops_M == pytest.approx(48 * 48 * 9 * 2 * 8 / 1e6)
  # 16 more cells of C^2 H W each: N=5 costs more than N=3 by that.
  assert cost.flops_M(CELL, spec, 8, 5) > cost.flops_M(CELL, spec, 8, 3)


# ---------------------------------------------------------------------------------------------
# Consistency with configs/cifar10.py.

@pytest.mark.slow
@pytest.mark.parametrize("mode", ["monas", "ensemble"])
def test_sample_as_folder_finds_the_cell_of_configs_cifar10(mode, c10_folder, tmp_path):
  def smoke(c):
    c.search.mode = mode
    if mode == "ensemble":
      # NASWOT scores a batch of the real images (synflow, MeCo and AZ-NAS draw their own
      # inputs, so they would not see a difference in the pixels); a forward pass compiles fast.
      c.ensemble.indicators = ("naswot", "flops")
      c.ensemble.weights = (1.0, 1.0)
      c.ensemble.cells_per_round = 8
    return c

  ref = search_cmd.run(smoke(config_lib.make_config("cifar10", "smoke")), str(tmp_path / "c10"),
                       echo=lambda s: None)
  lines = []
  got = search_cmd.run(smoke(folder_config(c10_folder, norm_mean=data.MEAN["cifar10"],
                                           norm_std=data.STD["cifar10"])),
                       str(tmp_path / "folder"), echo=lines.append)
  assert got["arch_str"] == ref["arch_str"]
  assert got["rounds"] == ref["rounds"]  # every value of every round, computed again
  assert got["seconds"]["compute"] > 0  # not served from the other search's memo
  assert got["data"]["dataset"] == "folder" and got["data"]["class_counts"]["train"] == [200] * 10
  assert got["config"]["num_classes"] == 10 and got["data_source"].startswith("folder:")
  assert "ground_truth" in got["cell"] and "ground_truth" not in ref["cell"]
  assert got["cell"]["latency_ms"] == ref["cell"]["latency_ms"]  # 32x32 RGB, C=16, N=5
  assert any("10 classes (0_airplane" in ln for ln in lines)


# ---------------------------------------------------------------------------------------------
# Train and export on the grayscale folder, at the searched C and N.

@pytest.mark.slow
def test_train_then_export_a_grayscale_folder_at_its_size(gray48, tmp_path):
  pytest.importorskip("jax2onnx")
  pytest.importorskip("onnxruntime")
  from experiments import export as export_cmd, train as train_cmd
  from monas_jax import train
  c = train.default_config("folder")
  c.data_dir, c.image_size, c.image_channels = str(gray48), 48, 1
  c.train.epochs, c.train.batch_size = 1, 16
  # The search result's network (C=4, N=1) is adopted where training keeps the benchmark's.
  c = train_cmd.network_from_search(c, {"network": {"channels": 4, "cells_per_stage": 1}},
                                    echo=lambda s: None)
  assert (c.train.channels, c.train.cells_per_stage) == (4, 1)
  train.validate_config(c)
  split = train.load_split(c)
  assert split.x_train.shape[1:] == (48, 48, 1) and split.eval_name == "test"
  res = train.train_and_evaluate(c, CELL, str(tmp_path / "train"), split, echo=lambda s: None,
                                 quiet=True)
  assert "nb201_test_acc" not in res and res["ground_truth"].startswith("no ground truth")
  assert res["data"]["classes"] == ["0_airplane", "1_automobile", "2_bird"]
  assert res["config"]["norm_mean"] == list(split.spec.mean)  # computed, then recorded
  # Export rebuilds the network's input and statistics from the checkpoint alone.
  arch, ckpt, ce, profiles = export_cmd.read_inputs(None, str(tmp_path / "train"),
                                                     str(tmp_path / "out"), ["stm32l432"],
                                                     "cifar10", 0)
  assert (ce.dataset, ce.image_size, ce.image_channels) == ("folder", 48, 1)
  rec = export_cmd.run(arch, ckpt, ce, profiles, str(tmp_path / "out"), calibration=8, check=4,
                       echo=lambda s: None)
  assert rec["matches"] and "(1, 1, 48, 48)" in rec["layout"]
  assert rec["network"] == {"channels": 4, "cells_per_stage": 1, "image_size": 48,
                            "image_channels": 1, "num_classes": 3}
  assert rec["num_eval"] == 9 and 0 <= rec["accuracy_int8"] <= 100
  # The memory model at this size against the exported graph (one byte an element).
  assert rec["estimate"]["peak_sram_bytes_int8"] == rec["peak_sram_bytes_int8"]


def test_training_refuses_another_size_than_searched(tmp_path):
  from experiments import train as train_cmd
  from monas_jax import train
  c = train.default_config("cifar10")
  c.train.channels = 8
  with pytest.raises(ValueError, match="the search was for C=4, N=1"):
    train_cmd.network_from_search(c, {"network": {"channels": 4, "cells_per_stage": 1}})


def test_sweep_refuses_a_dataset_without_ground_truth(tmp_path):
  from experiments import sweep
  with pytest.raises(ValueError, match="NAS-Bench-201 accuracies: no ground truth"):
    sweep.check_ground_truth(folder_config(tmp_path))
  sweep.check_ground_truth(config_lib.make_config("cifar10"))


# ---------------------------------------------------------------------------------------------
# A network that fits the MCU (issue 22, item 4).

def _stm32l432(c, channels, cells_per_stage):
  c.image_size, c.image_channels = 48, 1
  c.network.channels, c.network.cells_per_stage = channels, cells_per_stage
  c.hardware.profile, c.search.enforce_memory = "stm32l432", True
  return c


def test_memory_search_that_cannot_fit_says_what_would_before_any_compile(gray48, tmp_path,
                                                                          monkeypatch):
  def no_compile(*args, **kwargs):
    raise AssertionError("compiled before the memory budget was checked")

  monkeypatch.setattr(search_lib, "BatchEvaluator", no_compile)
  c = _stm32l432(folder_config(gray48), 16, 5)
  with pytest.raises(ValueError) as err:
    search_cmd.run(c, str(tmp_path / "run"), echo=lambda s: None)
  msg = str(err.value)
  assert "\n" not in msg and "SRAM 65536 B: the smallest reachable peak is" in msg
  # By TFLM's arena (the default memory model; the ONNX graph's activations alone allow C = 9).
  assert "would fit: config.network.channels <= 7 (at N=5, 48x48)" in msg
  assert not os.path.exists(tmp_path / "run" / "result.json")


def test_memory_search_at_a_size_that_fits_returns_a_cell_that_fits(gray48, tmp_path):
  c = _stm32l432(folder_config(gray48), 7, 3)  # C = 8 needs 66,864 B of TFLM arena at least
  # Costs only (lambda + mu = 1: K and R have no weight and nothing large compiles); the
  # budget and L from the stm32l432 table scaled to 48x48x1, C=8, N=3 decide every round.
  c.search.flops_weight, c.search.latency_weight = 0.5, 0.5
  res = search_cmd.run(c, str(tmp_path / "run"), echo=lambda s: None)
  cell = res["cell"]
  assert cell["fits"]["stm32l432"]
  assert cell["tflite_bytes"] <= 128 * 1024 and cell["tflm_arena_bytes"] <= 64 * 1024
  assert cell["latency_provenance"]["stm32l432"].startswith(
      "scaled from stm32l432 measured at 32x32x3, C=16, N=5 to 48x48x1, C=7, N=3")
  prunes = [r for r in res["rounds"] if r["kind"] == "prune"]
  assert prunes and all("L" in r["indicators"] and r["weights"]["L"] == pytest.approx(0.5)
                        for r in prunes)
