r"""The TFLM memory model (``monas_jax.hardware.tflm``) against real conversions run in TFLM.

  python benchmarks/tflm_model_check.py --set=NAME --seed=S --cells=K [--image_size=32
      --image_channels=3 --channels=16 --cells_per_stage=5 --dataset=cifar10]
  python benchmarks/tflm_model_check.py --report [NAME ...]

Needs ``pip install -e '.[tflite]'`` to measure; ``--report`` needs nothing but numpy. For K
random cells (numpy seed S; with ``--optimum`` the CIFAR-100 optimum first) at the given network
size, each initialised as ``experiments.export`` initialises an untrained export
(``train.init_state`` with ``jax.random.key(i)``, BatchNorm statistics of 4 sample images), it
converts the folded network to the int8 ``.tflite`` (``monas_jax.tflite``, 16 calibration
images: the file's size and graph do not depend on how many), runs it in TFLM's Python
interpreter and records, next to the model's prediction:

- the graph: the file's operators in order (builtin, fused ReLU, output bytes), equal or not to
  ``tflm.graph``'s;
- TFLM's recorded arena (head, tail, total) against ``tflm.arena(g, "host")``, and the model's
  32-bit Cortex-M prediction beside it;
- the flatbuffer's bytes (and its constant data, quantisation arrays, tensors) against
  ``tflm.flatbuffer_bytes``; and the ONNX-graph estimate (``memory.deployment_memory``) that
  ``enforce_memory`` used before.

Writes ``OUT/NAME.json`` (atomically, after every cell; ``--resume`` keeps finished cells). The
committed records (``benchmarks/results/tflm-model-check/``) are the fixture of
``tests/test_tflm_memory.py``.
"""
import argparse
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax import data, io  # noqa: E402
from monas_jax.hardware import latency, memory, tflm  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tflm-model-check")


def spec_of(net: dict) -> data.DataSpec:
  """The DataSpec of a record's network (its dataset's classes at the recorded input size)."""
  import dataclasses
  return dataclasses.replace(data.as_spec(net["dataset"]), image_size=net["image_size"],
                             channels=net["image_channels"],
                             pad=data.default_pad(net["image_size"]))


def predicted(arch: str, net: dict) -> dict:
  """The model's figures for one cell of a record's network."""
  g = tflm.graph(arch, spec_of(net), net["channels"], net["cells_per_stage"])
  fb = tflm.flatbuffer_bytes(g)
  a = tflm.arenas(g)
  host, m32 = a["host"], a["cortex_m"]
  return {"operators": [[o.kind, o.fused, g.sizes[o.out]] for o in g.ops],
          "head": host["head"], "tail": host["tail"], "total": host["total"],
          "total_cortex_m": m32["total"], "tail_cortex_m": m32["tail"],
          "flatbuffer": fb["total"], "constant_data": fb["constant_data"],
          "quantization_params": fb["quantization_params"], "tensors": fb["tensors"]}


def measure(a) -> None:
  import jax
  from experiments.export import batch_statistics
  from monas_jax import export, tflite, train
  tflite.require()
  import memory_check  # beside this file (run as a script): the sized network and images
  import tflite_check
  archs = tflite_check.check_cells(a.cells, a.seed, a.optimum)
  net = {"dataset": a.dataset, "image_size": a.image_size, "image_channels": a.image_channels,
         "channels": a.channels, "cells_per_stage": a.cells_per_stage}
  c, spec, xn = memory_check.sized_config(a.dataset, a.image_size, a.image_channels, a.channels,
                                          a.cells_per_stage)
  path = os.path.join(a.out, f"{a.set}.json")
  rows = io.read_json(path, "a tflm_model_check record")["rows"] if a.resume and \
      os.path.isfile(path) else []
  work = os.path.join("runs", "tflm_model_check", a.set)
  for i, arch in enumerate(archs):
    if i < len(rows):
      continue
    t0 = time.time()
    model = train.make_network(c, arch)
    st = train.init_state(c, model, train.make_optimizer(c, 1), jax.random.key(i))
    params = jax.device_get(st.params)
    stats = batch_statistics(model, params, st.batch_stats, xn[:4])
    folded = export.fold_batchnorm(params, stats, arch.ops, a.cells_per_stage)
    p = tflite.convert_int8(folded, arch.ops, a.cells_per_stage, a.image_size, a.image_channels,
                            xn, os.path.join(work, f"cell{i}", "model_int8.tflite"))
    arena = tflite.arena_bytes(tflite.interpreter(p))
    g = tflite.graph_memory(p)
    est = memory.deployment_memory(arch, spec, a.channels, a.cells_per_stage)
    rows.append({
        "arch_str": arch.to_string(), "seed": i,
        "measured": {"operators": tflite.operator_sequence(p), "head": arena["head"], "tail": arena["tail"],
                     "total": arena["total"], "flatbuffer": g["file"],
                     "constant_data": g["constant_data"],
                     "quantization_params": g["quantization_params"], "tensors": g["tensors"]},
        "onnx_estimate": {"flash": est["flash_bytes_int8"], "sram": est["peak_sram_bytes_int8"]},
        "seconds": round(time.time() - t0, 1)})
    io.write_json_atomic(path, {"set": a.set, "network": net, "seed": a.seed, "rows": rows,
                                **io.environment()})
    print(f"{a.set} cell {i}: {row_line(rows[-1], net)}", flush=True)


def row_line(r: dict, net: dict) -> str:
  m, p = r["measured"], predicted(r["arch_str"], net)
  same = "same graph" if p["operators"] == m["operators"] else "GRAPH DIFFERS"
  return (f"{same}; arena {m['total']} measured, {p['total']} predicted "
          f"({100 * (p['total'] / m['total'] - 1):+.2f} %); flatbuffer {m['flatbuffer']} measured, "
          f"{p['flatbuffer']} predicted ({100 * (p['flatbuffer'] / m['flatbuffer'] - 1):+.2f} %)")


def report(names) -> None:
  paths = [os.path.join(OUT, f"{n}.json") for n in names] if names else \
      sorted(glob.glob(os.path.join(OUT, "*.json")))
  pct = lambda a, b: 100 * (a / b - 1)  # noqa: E731
  for path in paths:
    rec = io.read_json(path, "a tflm_model_check record")
    net = rec["network"]
    print(f"\n{rec['set']}: {len(rec['rows'])} cells, {net['image_size']}x{net['image_size']}x"
          f"{net['image_channels']}, C={net['channels']}, N={net['cells_per_stage']}, "
          f"{net['dataset']} classes (seed {rec['seed']})\n")
    print("| # | cell | graph | TFLM arena (head + tail) | predicted | error | Cortex-M predicted | "
          "ONNX-graph SRAM est. | flatbuffer | predicted | error | ONNX-graph flash est. |")
    print("| --- | --- | --- | --- | --- | ---: | --- | --- | --- | --- | ---: | --- |")
    errs, ferrs, same, oe, of = [], [], 0, [], []
    verdict = {n: [0, 0] for n in latency.builtin_profiles()
               if latency.load_profile(n).kind == "mcu"}
    for i, r in enumerate(rec["rows"]):
      m, p = r["measured"], predicted(r["arch_str"], net)
      eq = p["operators"] == m["operators"]
      same += eq
      e, fe = pct(p["total"], m["total"]), pct(p["flatbuffer"], m["flatbuffer"])
      errs.append(e)
      ferrs.append(fe)
      oe.append(pct(r["onnx_estimate"]["sram"], m["total"]))
      of.append(pct(r["onnx_estimate"]["flash"], m["flatbuffer"]))
      for n, v in verdict.items():
        prof = latency.load_profile(n)
        fits = lambda f, s: f <= prof.flash_bytes and s <= prof.sram_bytes  # noqa: E731
        truth = fits(m["flatbuffer"], m["total"])
        v[0] += truth == fits(p["flatbuffer"], p["total"])
        v[1] += truth == fits(r["onnx_estimate"]["flash"], r["onnx_estimate"]["sram"])
      print(f"| {i} | `{r['arch_str']}` | {'same' if eq else 'differs'} | {m['total']} "
            f"({m['head']} + {m['tail']}) | {p['total']} ({p['head']} + {p['tail']}) | {e:+.2f} % | "
            f"{p['total_cortex_m']} | {r['onnx_estimate']['sram']} ({oe[-1]:+.1f} %) | "
            f"{m['flatbuffer']} | {p['flatbuffer']} | {fe:+.2f} % | "
            f"{r['onnx_estimate']['flash']} ({of[-1]:+.1f} %) |")
    n = len(rec["rows"])
    print(f"\nGraphs equal operator by operator: {same} of {n}. Arena: predicted / measured "
          f"{min(errs):+.2f} % to {max(errs):+.2f} % (exact on "
          f"{sum(abs(x) < 1e-9 for x in errs)}); flatbuffer {min(ferrs):+.2f} % to "
          f"{max(ferrs):+.2f} %. The ONNX-graph estimates: SRAM {min(oe):+.1f} % to "
          f"{max(oe):+.1f} %, flash {min(of):+.1f} % to {max(of):+.1f} %.")
    for name, (a_, b_) in verdict.items():
      print(f"{name}: fits (flash and SRAM) as TFLM measures: the model agrees on {a_} of {n}, the "
            f"ONNX-graph estimate on {b_} of {n}.")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--set", default="check")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--cells", type=int, default=12)
  ap.add_argument("--optimum", action="store_true", help="the CIFAR-100 optimum as cell 0")
  ap.add_argument("--dataset", default="cifar10")
  ap.add_argument("--image_size", type=int, default=32)
  ap.add_argument("--image_channels", type=int, default=3, choices=(1, 3))
  ap.add_argument("--channels", type=int, default=16)
  ap.add_argument("--cells_per_stage", type=int, default=5)
  ap.add_argument("--out", default=OUT)
  ap.add_argument("--resume", action="store_true")
  ap.add_argument("--report", nargs="*", default=None, metavar="NAME")
  a = ap.parse_args()
  if a.report is not None:
    return report(a.report)
  measure(a)


if __name__ == "__main__":
  main()
