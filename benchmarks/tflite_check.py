r"""The int8 TFLite model in TensorFlow Lite Micro, per cell: parity with JAX and memory vs our model.

  python benchmarks/tflite_check.py [--cells=21] [--images=400] [--out=runs/tflite_check]

Needs ``pip install -e '.[tflite,deploy]'``. For the CIFAR-100 optimum cell and ``--cells`` - 1
random cells (numpy seed 21), each C=16, N=5 on the bundled CIFAR-10 sample, initialised as
``experiments.export`` initialises an untrained export (``train.init_state`` with
``jax.random.key(i)`` for cell i, BatchNorm statistics of 4 sample images), it

- converts the folded network to a full-integer int8 ``.tflite`` (``monas_jax.tflite``;
  representative dataset: ``--calibration`` normalised training images) and runs it in TFLM's
  Python interpreter on ``--images`` held-out images: top-1 agreement with the JAX float32
  network, overall and by margin quartile; the same file in TensorFlow's desktop TFLite
  interpreter; onnxruntime's int8 QDQ model of the same network (``monas_jax.export``); and the
  floor set by the int8 output alone (the float logits rounded to the output tensor's grid);
- records TFLM's recorded arena (total, head = planned activations and scratch, tail =
  persistent) and the flatbuffer's bytes next to ``hardware.memory.deployment_memory``'s peak
  SRAM and flash estimates and the ONNX graph's figures;
- with ``--int16_cells=K`` converts the first K cells once more with int16 activations (16x8
  mode, desktop interpreter): how much of the disagreement is activation resolution.

Prints one markdown row per cell and writes ``OUT/tflite_check.json`` (atomically) after each.
``--report`` prints the two tables of benchmarks/RESULTS.md from that file and the ``.tflite``
files beside it (parity; memory, with ``tflite.graph_memory``'s breakdown of each flatbuffer and
the liveness peak of its graph), computing nothing else.
"""
import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments.export import batch_statistics  # noqa: E402
from monas_jax import data, export, io, space, tflite, train  # noqa: E402
from monas_jax.hardware import memory  # noqa: E402

C100_OPT = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_3x3~2|")


def check_cells(n: int, seed: int = 21, optimum: bool = True) -> list:
  """The cells of these checks: the CIFAR-100 optimum (``optimum``) and random cells drawn with
  numpy seed ``seed``, ``n`` in all."""
  rng = np.random.default_rng(seed)
  archs = [space.Arch.from_string(C100_OPT)] if optimum else []
  while len(archs) < n:
    archs.append(space.Arch(tuple(int(o) for o in rng.integers(0, space.NUM_OPS,
                                                                space.NUM_EDGES))))
  return archs


def sample_images(calibration: int, images: int):
  """(config, spec, normalised training images [:calibration], held-out images [:images]) of the
  bundled CIFAR-10 sample at the default C=16, N=5 network."""
  c = train.default_config("cifar10")
  split = train.load_split(c)
  spec = data.config_spec(c)
  norm = lambda x: np.asarray(data.normalize(x, spec))  # noqa: E731
  return c, spec, norm(split.x_train[:calibration]), norm(split.x_eval[:images])


def output_floor(ref: np.ndarray, tflite_path: str) -> float:
  """Top-1 agreement of the float logits with themselves rounded to the int8 output grid (ties
  go to the first class, as argmax of int8 logits does): the best any int8-output model gets."""
  it = tflite.interpreter(tflite_path)
  q = it.get_output_details(0)["quantization_parameters"]
  s, z = float(q["scales"][0]), int(q["zero_points"][0])
  r = np.clip(np.round(ref / s) + z, -128, 127)
  return float(np.mean(r.argmax(1) == ref.argmax(1)))


def report(out):
  rec = io.read_json(os.path.join(out, "tflite_check.json"), "a tflite_check.json")
  rows = rec["rows"]
  pc = lambda x: f"{100 * x:.2f} %"  # noqa: E731
  print(f"Parity: top-1 agreement with JAX float32 on {rec['images']} held-out images "
        f"({rec['calibration']} calibration images)\n")
  print("| # | cell | TFLM int8 | desktop TFLite | ONNX int8 | output floor | by margin quartile "
        "(low to high) | logit std |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for i, r in enumerate(rows):
    q = " / ".join(f"{100 * b['agreement']:.0f}" for b in r["agreement_by_margin"])
    onnx = pc(r["argmax_agreement_onnx_int8"]) if "argmax_agreement_onnx_int8" in r else "-"
    print(f"| {i} | `{r['arch_str']}` | {pc(r['argmax_agreement_tflm'])} | "
          f"{pc(r['argmax_agreement_desktop_tflite'])} | {onnx} | {pc(r['output_floor'])} | "
          f"{q} | {r['reference_logit_std']:.3f} |")
  ag = np.array([r["argmax_agreement_tflm"] for r in rows])
  fl = np.array([r["output_floor"] for r in rows])
  print(f"\nTFLM: min {pc(ag.min())}, median {pc(np.median(ag))}, mean {pc(ag.mean())}; cells "
        f">= 98 %: {int(np.sum(ag >= 0.98))} of {len(ag)}. Output floor: min {pc(fl.min())}, "
        f"median {pc(np.median(fl))}.\n")
  print("| # | est. SRAM | TFLite graph liveness | TFLM head | TFLM tail (host) | TFLM total | "
        "est. / head | est. flash | flatbuffer | constant data | quant. params | names | "
        "est. / flatbuffer |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  ratios = []
  for i, r in enumerate(rows):
    g = tflite.graph_memory(os.path.join(out, f"cell{i}", "model_int8.tflite"))
    ar = r["tflm_arena"]
    rs, rf = r["sram_estimate"] / ar["head"], r["flash_estimate"] / r["tflite_bytes"]
    ratios.append((rs, rf, r["sram_estimate"] / ar["total"], g["activation_peak"] == r["sram_estimate"]))
    print(f"| {i} | {r['sram_estimate']} | {g['activation_peak']} | {ar['head']} | {ar['tail']} | "
          f"{ar['total']} | {100 * (rs - 1):+.1f} % | {r['flash_estimate']} | {r['tflite_bytes']} | "
          f"{g['constant_data']} | {g['quantization_params']} | {g['names']} | "
          f"{100 * (rf - 1):+.1f} % |")
  from monas_jax.hardware import latency
  for name in ("stm32f746", "stm32l432"):
    prof = latency.load_profile(name)
    same = [((r["flash_estimate"] <= prof.flash_bytes) == (r["tflite_bytes"] <= prof.flash_bytes),
             (r["sram_estimate"] <= prof.sram_bytes) == (r["tflm_arena"]["total"] <= prof.sram_bytes))
            for r in rows]
    bad = [i for i, (f, s_) in enumerate(same) if not (f and s_)]
    print(f"\n{name}: the estimate's fits_flash / fits_sram equal TFLM's on "
          f"{sum(f for f, _ in same)} / {sum(s_ for _, s_ in same)} of {len(rows)} cells"
          + (f" (differ: cells {bad})" if bad else ""))
  rs, rf, rt, eq = map(np.array, zip(*ratios))
  print(f"\nSRAM estimate / TFLM head: {100 * (rs.min() - 1):+.1f} % to {100 * (rs.max() - 1):+.1f} %; "
        f"/ TFLM total: {100 * (rt.min() - 1):+.1f} % to {100 * (rt.max() - 1):+.1f} %; estimate "
        f"equals the TFLite graph's liveness peak on {int(eq.sum())} of {len(eq)}. Flash estimate / "
        f"flatbuffer: {100 * (rf.min() - 1):+.1f} % to {100 * (rf.max() - 1):+.1f} %.")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--cells", type=int, default=21)
  ap.add_argument("--images", type=int, default=400)
  ap.add_argument("--calibration", type=int, default=200)
  ap.add_argument("--int16_cells", type=int, default=0)
  ap.add_argument("--onnx_cells", type=int, default=None,
                  help="ONNX figures for the first K cells only (default: every cell)")
  ap.add_argument("--resume", action="store_true",
                  help="keep the rows of OUT/tflite_check.json and do the cells after them")
  ap.add_argument("--out", default="runs/tflite_check")
  ap.add_argument("--report", action="store_true")
  a = ap.parse_args()
  tflite.require()
  if a.report:
    return report(a.out)
  archs = check_cells(a.cells)
  c, spec, xcal, xev = sample_images(a.calibration, a.images)
  C, N = c.train.channels, c.train.cells_per_stage
  rows = []
  done_path = os.path.join(a.out, "tflite_check.json")
  if a.resume and os.path.isfile(done_path):
    rows = io.read_json(done_path, "a tflite_check.json")["rows"]
    for r, arch in zip(rows, archs):
      if r["arch_str"] != arch.to_string():
        raise ValueError(f"{done_path}: row {r['arch_str']} is not this run's {arch.to_string()}")
  print("| cell | agree TFLM | desktop | ONNX int8 | output floor | lowest-margin quartile | "
        "arena (head + tail) | est. SRAM | ONNX SRAM | flatbuffer | est. flash |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for i, arch in enumerate(archs):
    if i < len(rows):
      continue
    t0 = time.time()
    out = os.path.join(a.out, f"cell{i}")
    net = train.make_network(c, arch)
    st = train.init_state(c, net, train.make_optimizer(c, 1), jax.random.key(i))
    params = jax.device_get(st.params)
    stats = batch_statistics(net, params, st.batch_stats, xcal[:4])
    folded = export.fold_batchnorm(params, stats, arch.ops, N)
    ref = export.jax_logits(params, stats, arch.ops, C, N, spec.num_classes, xev)
    rec = tflite.export_tflite(folded=folded, ops=arch.ops, cells_per_stage=N,
                               reference_logits=ref, check_images=xev,
                               calibration_images=xcal, out_dir=out)
    desk = tflite.agreement(ref, tflite.run_desktop(rec["tflite_path"], xev))
    est = memory.deployment_memory(arch, spec, C, N)
    row = {"arch_str": arch.to_string(), "seed": i,
           "argmax_agreement_tflm": rec["argmax_agreement"],
           "agreement_by_margin": rec["agreement_by_margin"],
           "argmax_agreement_desktop_tflite": desk["argmax_agreement"],
           "output_floor": output_floor(ref, rec["tflite_path"]),
           "reference_logit_std": float(ref.std()),
           "tflm_arena": rec["tflm_arena"], "tflm_arena_bytes": rec["tflm_arena_bytes"],
           "tflite_bytes": rec["tflite_bytes"], "tflite_operators": rec["tflite_operators"],
           "sram_estimate": est["peak_sram_bytes_int8"], "flash_estimate": est["flash_bytes_int8"]}
    if a.onnx_cells is None or i < a.onnx_cells:
      o = export.export_cell(ops=arch.ops, params=params, batch_stats=stats, channels=C,
                             cells_per_stage=N, num_classes=spec.num_classes,
                             check_images=xev[:2], calibration_images=xcal,
                             out_dir=os.path.join(out, "onnx"))
      q = export.run_onnx(export.session(o["int8_path"]), xev.transpose(0, 3, 1, 2).copy())
      row.update({"argmax_agreement_onnx_int8": tflite.agreement(ref, q)["argmax_agreement"],
                  "sram_onnx": o["peak_sram_bytes_int8"], "flash_onnx": o["int8_bytes"]})
    if i < a.int16_cells:
      p16 = tflite.convert_int8(folded, arch.ops, N, spec.image_size, spec.channels, xcal,
                                os.path.join(out, "model_16x8.tflite"), activation_bits=16)
      row["argmax_agreement_16x8_desktop"] = tflite.agreement(
          ref, tflite.run_desktop(p16, xev))["argmax_agreement"]
    row["seconds"] = round(time.time() - t0, 1)
    rows.append(row)
    io.write_json_atomic(done_path, {
        "rows": rows, "images": a.images, "calibration": a.calibration,
        "network": {"channels": C, "cells_per_stage": N, "image_size": spec.image_size},
        **io.environment()})
    ar = rec["tflm_arena"]
    pct = lambda x, y: f"{100 * (x / y - 1):+.1f} %"  # noqa: E731
    print(f"| `{arch.to_string()}` | {100 * row['argmax_agreement_tflm']:.2f} % | "
          f"{100 * desk['argmax_agreement']:.2f} % | "
          f"{100 * row.get('argmax_agreement_onnx_int8', float('nan')):.2f} % | "
          f"{100 * row['output_floor']:.2f} % | "
          f"{100 * rec['agreement_by_margin'][0]['agreement']:.0f} % | "
          f"{ar['total']} ({ar['head']} + {ar['tail']}) | {row['sram_estimate']} "
          f"({pct(row['sram_estimate'], ar['head'])} of head) | {row.get('sram_onnx', '')} | "
          f"{row['tflite_bytes']} | {row['flash_estimate']} "
          f"({pct(row['flash_estimate'], row['tflite_bytes'])}) |"
          + (f" 16x8: {100 * row['argmax_agreement_16x8_desktop']:.2f} %"
             if "argmax_agreement_16x8_desktop" in row else ""), flush=True)
  ag = np.array([r["argmax_agreement_tflm"] for r in rows])
  print(f"TFLM top-1 agreement over {len(rows)} cells: min {100 * ag.min():.2f} %, median "
        f"{100 * np.median(ag):.2f} %, cells >= 98 %: {int(np.sum(ag >= 0.98))}")


if __name__ == "__main__":
  main()
