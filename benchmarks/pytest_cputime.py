"""pytest plugin: wall and CPU seconds of every test, one JSON line each (for a shared machine).

  PYTHONPATH=benchmarks python -m pytest -n 2 -q -p pytest_cputime [tests...]
  python benchmarks/pytest_cputime.py [FILE]     # the table, most CPU first

On a machine shared with other work, wall durations (``--durations``) measure the wait for a
core as much as the test; the CPU seconds of the test's worker (all its threads: XLA compiles
and runs) plus those of the subprocesses it ran and waited for depend much less on other load.
A module or session fixture's cost falls on the first test that uses it. Records go to
``$PYTEST_CPUTIME_OUT`` (default ``pytest_cputime.jsonl`` in the working directory), appended.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

OUT = os.environ.get("PYTEST_CPUTIME_OUT", "pytest_cputime.jsonl")


def _children_cpu() -> float:
  r = resource.getrusage(resource.RUSAGE_CHILDREN)
  return r.ru_utime + r.ru_stime


try:
  import pytest

  @pytest.hookimpl(hookwrapper=True)
  def pytest_runtest_protocol(item, nextitem):
    """Times setup, call and teardown of one test."""
    del nextitem
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    yield
    rec = {"test": item.nodeid, "wall_s": time.perf_counter() - t0,
           "cpu_s": time.process_time() - c0, "child_cpu_s": _children_cpu() - k0,
           "load1": os.getloadavg()[0]}
    with open(OUT, "a") as f:
      f.write(json.dumps(rec) + "\n")
except ImportError:  # the table below needs no pytest
  pass


def main(path: str = OUT) -> None:
  """Prints tests by CPU seconds (worker + subprocesses), most first, and totals per file."""
  with open(path) as f:
    rs = [json.loads(line) for line in f if line.strip()]
  files: dict = {}
  print("| CPU s | of which subprocesses | wall s | test |\n| ---: | ---: | ---: | --- |")
  for r in sorted(rs, key=lambda r: -(r["cpu_s"] + r["child_cpu_s"])):
    cpu = r["cpu_s"] + r["child_cpu_s"]
    files[r["test"].split("::")[0]] = files.get(r["test"].split("::")[0], 0.0) + cpu
    if cpu >= 1.0:
      print(f"| {cpu:.1f} | {r['child_cpu_s']:.1f} | {r['wall_s']:.1f} | {r['test']} |")
  print("\n| CPU s | file |\n| ---: | --- |")
  for name, cpu in sorted(files.items(), key=lambda kv: -kv[1]):
    print(f"| {cpu:.1f} | {name} |")
  print(f"\n{len(rs)} tests, {sum(files.values()):.0f} CPU s")


if __name__ == "__main__":
  main(*sys.argv[1:])
