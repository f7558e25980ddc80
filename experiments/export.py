r"""Export a cell's network to ONNX and/or int8 TFLite, check it against JAX and against the MCU.

  python -m experiments.export --arch='|nor_conv_3x3~0|+|...|' --out=runs/export-9930
  python -m experiments.export --checkpoint=runs/train-cifar10-9930-seed0 --out=DIR \
      [--format=onnx|tflite|both] [--profile=stm32f746] [--profile=stm32l432] [--data_dir=...]

``--format=onnx`` (the default) writes ``DIR/model_float32.onnx`` (batch 1, BatchNorm folded, NCHW
float32 input) and ``DIR/model_int8.onnx`` (static int8, QDQ, calibrated on sample images), checks
the float32 model against the JAX network in onnxruntime (max abs difference of the logits, at
most 1e-4), prints flash (the int8 model's weight bytes) and peak SRAM (activations) against each
MCU profile's budget, and, as the last line, one JSON object (also in ``DIR/export.json``).

``--format=tflite`` (needs ``pip install -e '.[tflite]'``) writes ``DIR/model_int8.tflite``
(full-integer int8: int8 input and output, per-channel weights, calibrated on ``--calibration``
training images), runs it in TensorFlow Lite Micro's interpreter on ``--parity_images`` held-out
images (top-1 agreement with the JAX float32 network), records the tensor arena TFLM allocated,
and writes ``DIR/model_data.cc`` / ``model_data.h`` (the C array for the firmware). The flash
and SRAM verdicts then use the flatbuffer's bytes and TFLM's arena. ``--format=both`` does both.

With a trained ``--checkpoint`` it also gives the float32 and int8 accuracy on the evaluation
images (the test split, or the held-out part of the bundled sample); without one the weights are
an initialisation: sizes and fit are those of the trained model, accuracies are not reported.
Exit status 1 when the ONNX model does not match JAX.
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from experiments import cli
from monas_jax import data, io, space, train


def _profiles(names):
  from monas_jax.hardware import latency
  names = list(names) or [n for n in latency.builtin_profiles()
                          if latency.load_profile(n).kind == "mcu"]
  out = []
  for n in names:
    try:
      p = latency.load_profile(n)
    except (FileNotFoundError, KeyError, ValueError) as e:
      raise ValueError(f"--profile={n}: {e}") from None
    if p.sram_bytes is None or p.flash_bytes is None:
      raise ValueError(f"--profile={n} is a {p.kind} profile without sram_bytes/flash_bytes; "
                       "give an MCU profile")
    out.append(p)
  return out


def read_inputs(arch, checkpoint, out, profiles, dataset, seed, data_dir=None, network=None,
                image=None):
  """Checks every input before any compute. Returns (arch, checkpoint file or None, config,
  profiles).

  ``network`` (C, N) and ``image`` (size or None, channels) apply to an untrained export
  (``--arch``); a checkpoint brings its own (with its dataset, statistics and classes).
  """
  if not out:
    raise ValueError("give --out=DIR for the ONNX files")
  known = data.DATASETS + data.USER_DATASETS
  if dataset not in known:
    raise ValueError(f"--dataset={dataset!r} is not one of {known}")
  ckpt = None
  c = train.default_config(dataset)
  with c.unlocked():
    if network is not None:
      c.train.channels, c.train.cells_per_stage = network
    if image is not None:
      if image[0] is not None:
        c.image_size = image[0]
      c.image_channels = image[1]
  if checkpoint:
    ckpt = os.path.join(checkpoint, train.CHECKPOINT) if os.path.isdir(checkpoint) else checkpoint
    if not os.path.isfile(ckpt):
      raise FileNotFoundError(f"--checkpoint: {ckpt} does not exist (a training workdir holds "
                              f"{train.CHECKPOINT})")
    _, meta = train.read_checkpoint(ckpt)
    a = space.Arch.from_string(meta["arch_str"])
    if arch and space.Arch.from_string(arch) != a:
      raise ValueError(f"--arch {arch} is not the checkpoint's cell {meta['arch_str']}")
    c = train.config_from_meta(meta)
  elif arch:
    a = space.Arch.from_string(arch)
  else:
    raise ValueError("give --arch='|op~0|+|...|' or --checkpoint=DIR")
  if data_dir is None and c.dataset in data.USER_DATASETS:
    data_dir = c.data_dir  # the checkpoint's own folder: no sample of it is bundled
  if data_dir is None and c.dataset not in ("cifar10", "cifar100"):
    raise ValueError(f"--data_dir: no {c.dataset} sample is bundled; give --data_dir=DIR with its "
                     "files (calibration and check images)")
  with c.unlocked():
    c.seed = seed
    c.data_dir = data_dir
  data.check_config_fields(c)
  return a, ckpt, c, _profiles(profiles)


def verdict_lines(rec, profiles):
  kib = lambda b: f"{b / 1024:.1f} KiB"  # noqa: E731
  flash, sram = rec["flash_bytes"], rec["sram_bytes"]
  lines = []
  if "int8_bytes" in rec:
    lines.append(
        f"int8 ONNX model: flash {kib(rec['int8_bytes'])} (weights "
        f"{kib(rec['weight_bytes_by_dtype'].get('int8', 0))} int8 + biases and scales), peak "
        f"SRAM {kib(rec['peak_sram_bytes_int8'])} (activations)")
  if "tflite_bytes" in rec:
    a = rec["tflm_arena"]
    lines.append(
        f"int8 TFLite model: flash {kib(rec['tflite_bytes'])} (the flatbuffer), TFLM arena "
        f"{kib(a['total'])} ({kib(a['head'])} planned tensors and scratch + {kib(a['tail'])} "
        "persistent, host build with 8-byte pointers; a 32-bit Cortex-M build needs about "
        f"{kib(rec['estimate']['tflm_arena_bytes_cortex_m'])}, predicted)")
  for p in profiles:
    ff, fs = rec["fits_flash"][p.name], rec["fits_sram"][p.name]
    lines.append(
        f"{p.name} ({p.device}): flash {kib(flash)} of {kib(p.flash_bytes)} "
        f"{'fits' if ff else 'DOES NOT FIT'}; SRAM {kib(sram)} of "
        f"{kib(p.sram_bytes)} {'fits' if fs else 'DOES NOT FIT'} -> "
        f"{'deployable' if ff and fs else 'not deployable as is'} ({rec['verdict_source']})")
  return lines


def batch_statistics(net, params, init_stats, images):
  """BatchNorm running statistics equal to the train-mode batch statistics of ``images``.

  An initialisation's statistics (mean 0, variance 1) do not normalise anything: through the
  edge sums of 15 cells the activations grow to logits of 1e6, where float32 rounding alone
  exceeds the ONNX check's 1e-4. One train-mode pass gives 0.9 * old + 0.1 * batch; solved for
  the batch statistics. Few images: XLA constant-folds the pooling's window counts per image.
  """
  import jax
  from monas_jax import models
  m = models.BN_MOMENTUM

  @jax.jit
  def f(p, s, x):
    _, new = net.apply({"params": p, "batch_stats": s}, x, train=True, mutable=["batch_stats"])
    return jax.tree_util.tree_map(lambda n, o: (n - m * o) / (1 - m), new["batch_stats"], s)

  return jax.device_get(f(params, init_stats, images))


FORMATS = ("onnx", "tflite", "both")
PARITY_TARGET = 0.98  # TFLM int8 vs JAX float32 top-1 agreement asked of a deployment


def check_format(fmt: str) -> None:
  """Ends nothing, imports nothing heavy: raises ValueError for an unknown format and
  ImportError (one line naming the install command) when its extra is not installed."""
  if fmt not in FORMATS:
    raise ValueError(f"--format={fmt!r} is not one of {FORMATS}")
  if fmt in ("tflite", "both"):
    from monas_jax import tflite
    tflite.require(f"--format={fmt}")


def run(arch, ckpt, c, profiles, out, calibration: int = 200, check: int = 16,
        echo=print, fmt: str = "onnx", parity_images: int = 400) -> dict:
  """Export, check, quantise and measure; returns the record (also written to out/export.json).

  ``fmt``: "onnx", "tflite" or "both" (``FORMATS``); ``parity_images``: held-out images on
  which the TFLM int8 model's top-1 label is compared with the JAX float32 network's."""
  import jax
  import numpy as np
  from monas_jax import export
  from monas_jax.hardware import memory
  check_format(fmt)
  split = train.load_split(c)
  c = data.resolve_config(c, split.spec)
  spec = data.config_spec(c)  # a checkpoint's statistics when it has them: what it trained on
  norm = lambda x: np.asarray(data.normalize(x, spec))  # noqa: E731
  if ckpt:
    params, stats, meta = train.read_checkpoint_variables(ckpt)
    trained = f"checkpoint {ckpt} (step {meta['step']})"
  else:
    net = train.make_network(c, arch)
    state = train.init_state(c, net, train.make_optimizer(c, 1), jax.random.key(c.seed))
    params = jax.device_get(state.params)
    stats = batch_statistics(net, params, state.batch_stats, norm(split.x_train[:4]))
    trained = ("untrained initialisation (no --checkpoint), BatchNorm statistics of 4 sample "
               "images: accuracy not reported")
  echo(f"weights: {trained}; data: {split.source}")
  C, N = c.train.channels, c.train.cells_per_stage
  x_cal = norm(split.x_train[:calibration])
  rec: dict = {}
  # Calibrate on training images, check and evaluate on the evaluation images.
  if fmt in ("onnx", "both"):
    rec.update(export.export_cell(
        ops=arch.ops, params=params, batch_stats=stats, channels=C, cells_per_stage=N,
        num_classes=spec.num_classes, check_images=norm(split.x_eval[:check]),
        calibration_images=x_cal, out_dir=out, eval_images=norm(split.x_eval) if ckpt else None,
        eval_labels=split.y_eval if ckpt else None))
  if fmt in ("tflite", "both"):
    from monas_jax import tflite
    # One JAX and one TFLM pass: over every evaluation image with a checkpoint (the accuracy),
    # else over the parity images; the parity check takes the first parity_images of them.
    x = norm(split.x_eval if ckpt else split.x_eval[:parity_images])
    f32 = export.jax_logits(params, stats, arch.ops, C, N, spec.num_classes, x)
    t = tflite.export_tflite(
        folded=export.fold_batchnorm(params, stats, arch.ops, N), ops=arch.ops,
        cells_per_stage=N, reference_logits=f32[:parity_images], check_images=x,
        calibration_images=x_cal, out_dir=out, eval_labels=split.y_eval if ckpt else None)
    rec.update(t)
    rec["parity_target"] = PARITY_TARGET
    rec["parity_ok"] = bool(t["argmax_agreement"] >= PARITY_TARGET)
    if ckpt:
      rec["accuracy_float32_jax"] = float(100 * np.mean(f32.argmax(1) == np.asarray(split.y_eval)))
      rec.setdefault("num_eval", int(len(x)))
  if "tflite_bytes" in rec:  # what TFLM measured: the flatbuffer in flash, the arena in SRAM
    flash, sram = rec["tflite_bytes"], rec["tflm_arena_bytes"]
    source = "TFLM: flatbuffer bytes and recorded arena"
  else:
    flash, sram = rec["int8_bytes"], rec["peak_sram_bytes_int8"]
    source = "ONNX int8: initializer bytes and activation liveness peak"
  est = memory.deployment_memory(arch, spec, C, N)
  rec.update({
      "format": fmt, "arch_str": arch.to_string(), "dataset": c.dataset, "weights": trained,
      "network": {"channels": C, "cells_per_stage": N,
                  "image_size": spec.image_size, "image_channels": spec.channels,
                  "num_classes": spec.num_classes},
      "data": split.record, "data_source": split.source,
      "flash_bytes": int(flash), "sram_bytes": int(sram), "verdict_source": source,
      "fits_flash": {p.name: bool(flash <= p.flash_bytes) for p in profiles},
      "fits_sram": {p.name: bool(sram <= p.sram_bytes) for p in profiles},
      "budgets": {p.name: {"flash_bytes": p.flash_bytes, "sram_bytes": p.sram_bytes}
                  for p in profiles},
      # The models the search's enforce_memory uses (hardware.memory): the ONNX graph's, and the
      # TFLite file and TFLM arena predicted without TensorFlow (host build, and a Cortex-M's).
      "estimate": {k: est[k] for k in ("flash_bytes_int8", "peak_sram_bytes_int8", "tflite_bytes",
                                       "tflm_arena_bytes", "tflm_arena_bytes_cortex_m")},
      "calibration_images": int(min(calibration, len(split.x_train))),
  })
  if "onnx_path" in rec:
    echo(f"ONNX {rec['onnx_path']}: max |logits - JAX| = {rec['max_abs_diff']:.2e} over "
         f"{min(check, len(split.x_eval))} images "
         f"({'matches' if rec['matches'] else 'DOES NOT MATCH'}, tolerance {rec['tolerance']:.0e})")
  if "accuracy_int8" in rec:
    echo(f"accuracy on {rec['num_eval']} {split.eval_name} images (onnxruntime): float32 "
         f"{rec['accuracy_float32']:.2f} %, int8 {rec['accuracy_int8']:.2f} %")
  if "tflite_path" in rec:
    echo(f"TFLite {rec['tflite_path']} ({rec['tflite_bytes']} B) in TFLM: top-1 agreement with "
         f"JAX float32 {100 * rec['argmax_agreement']:.2f} % over {rec['agreement_images']} "
         f"{split.eval_name} images ({'meets' if rec['parity_ok'] else 'BELOW'} the "
         f"{100 * PARITY_TARGET:.0f} % target); C array {rec['c_array']['source']}")
    if "accuracy_int8_tflm" in rec:
      echo(f"accuracy on {rec['num_eval']} {split.eval_name} images: JAX float32 "
           f"{rec['accuracy_float32_jax']:.2f} %, TFLM int8 {rec['accuracy_int8_tflm']:.2f} %")
  for line in verdict_lines(rec, profiles):
    echo(line)
  io.write_json_atomic(os.path.join(out, "export.json"), rec)
  return rec


def main(argv):
  del argv
  F = flags.FLAGS
  try:  # before any compute: a missing extra is one line naming the install command
    check_format(F.format)
  except (ValueError, ImportError) as e:
    cli.fail(str(e))
  arch, ckpt, c, profiles = cli.run_or_exit(
      read_inputs, F.arch, F.checkpoint, F.out, F.profile, F.dataset, F.seed, F.data_dir,
      (F.channels, F.cells_per_stage), (F.image_size, F.image_channels))
  cli.validated(c, train.validate_config)
  rec = cli.run_or_exit(run, arch, ckpt, c, profiles, F.out, F.calibration,
                        echo=lambda s: print(s), fmt=F.format, parity_images=F.parity_images)
  print(json.dumps(rec))
  sys.exit(0 if rec.get("matches", True) else 1)


if __name__ == "__main__":
  flags.DEFINE_string("arch", None, "Arch string of the cell (or the checkpoint's).")
  flags.DEFINE_string("checkpoint", None, "Training workdir (or its checkpoint.npz).")
  flags.DEFINE_string("out", None, "Output folder for the ONNX models and export.json.")
  flags.DEFINE_multi_string("profile", [], "MCU profile(s) to check (default: every MCU profile).")
  flags.DEFINE_string("dataset", "cifar10", "Dataset of an untrained export (input size, classes).")
  flags.DEFINE_integer("seed", 0, "Initialisation seed of an untrained export.")
  flags.DEFINE_string("data_dir", None, "The dataset's files (calibration, check and evaluation "
                      "images); default the bundled sample (none for imagenet16_120).")
  flags.DEFINE_integer("calibration", 200, "Training images for int8 calibration.")
  flags.DEFINE_string("format", "onnx", "onnx (float32 and int8 QDQ ONNX), tflite (int8 TFLite "
                      "run in TFLM, and the C array; pip install -e '.[tflite]') or both.")
  flags.DEFINE_integer("parity_images", 400, "Held-out images for the TFLM int8 vs JAX float32 "
                       "top-1 agreement.")
  flags.DEFINE_integer("channels", 16, "C of an untrained export (a checkpoint has its own).")
  flags.DEFINE_integer("cells_per_stage", 5, "N of an untrained export.")
  flags.DEFINE_integer("image_size", None, "Input side of an untrained export (default: the "
                       "dataset's).")
  flags.DEFINE_integer("image_channels", 3, "Input channels of an untrained export (1 or 3).")
  app.run(main, flags_parser=cli.parse_flags)
