r"""The full search end to end and per phase, in a fresh process (compiles included).

  python benchmarks/search_speed.py [--config=configs/cifar100.py] [--quick] [--mode=ensemble]

Phases: data loading, building the indicators (tracing + XLA compile, per indicator), and
each pruning round (compute). Prints a table and, last, one JSON line. ``--quick`` uses the
smoke variant. Compare: the published PyTorch TE-NAS search (C=3/N=1 supernet, 3 repeats, batch
72) takes about 27 minutes on a 2-core CPU and about 8 minutes on one H100.
"""
import argparse
import json
import time

T0 = time.perf_counter()
import jax  # noqa: E402  (import time is part of the end-to-end figure)
import jax.numpy as jnp  # noqa: E402

from monas_jax import benchmark, data, io, search, space  # noqa: E402
from monas_jax import config as config_lib  # noqa: E402


def load_config(path: str):
  import importlib.util
  name, _, arg = path.partition(":")
  spec = importlib.util.spec_from_file_location("cfg", name)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg or None)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--config", default="configs/cifar100.py")
  ap.add_argument("--batch_size", type=int, default=0, help="override ntk.batch_size")
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--mode", default="", help="search.mode (default: the config's)")
  args = ap.parse_args()
  c = load_config(args.config + (":smoke" if args.quick and ":" not in args.config else ""))
  if args.batch_size:
    c.ntk.batch_size = args.batch_size
  if args.mode:
    c.search.mode = args.mode
  config_lib.validate(c)
  phases = {"import_s": time.perf_counter() - T0}
  t = time.perf_counter()
  x, y, source = data.load_images(c.dataset, c.data_dir)
  images = jnp.asarray(x)
  phases["data_s"] = time.perf_counter() - t
  t = time.perf_counter()
  settings = search.make_settings(c, images, source, labels=jnp.asarray(y))
  phases["build_s"] = time.perf_counter() - t
  evs = (settings.evaluators if isinstance(settings.evaluators, dict)  # monas: {K: ev, ...}
         else {"+".join(names): ev for names, ev in settings.evaluators})  # ensemble
  phases["compile_s"] = {n: ev.compile_seconds for n, ev in evs.items()}
  state = search.initial_state(c.seed, search.excluded_ops(c))
  rounds = []
  t_round = [time.perf_counter()]

  def on_round(s):
    now = time.perf_counter()
    rounds.append({"round": s.round, "candidates": len(s.history[-1]["candidates"]),
                   "seconds": now - t_round[0]})
    t_round[0] = now

  t = time.perf_counter()
  state = search.run(state, settings, on_round=on_round)
  phases["search_s"] = time.perf_counter() - t
  phases["compute_s"] = {n: ev.compute_seconds for n, ev in evs.items()}
  phases["evaluations"] = {n: ev.evaluations for n, ev in evs.items()}
  phases["ms_per_evaluation"] = {n: 1000 * ev.compute_seconds / max(ev.evaluations, 1)
                                 for n, ev in evs.items()}
  phases["devices"] = {"count": len(jax.local_devices()),
                       "kind": jax.local_devices()[0].device_kind,
                       "platform": jax.default_backend()}
  phases["rounds"] = rounds
  phases["end_to_end_s"] = time.perf_counter() - T0
  arch = space.Arch.from_mask(state.mask)
  for k, v in phases.items():
    print(f"{k:14s} {v if not isinstance(v, float) else f'{v:.2f}'}")
  print(json.dumps({"config": args.config, "quick": args.quick, "ntk_batch_size": c.ntk.batch_size,
                    "arch_str": arch.to_string(),
                    "test_acc": benchmark.lookup(arch)[benchmark.ACC_COLUMN[c.dataset]],
                    "data_source": source, **phases, **io.environment()}))


if __name__ == "__main__":
  main()
