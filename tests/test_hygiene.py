"""Module hygiene of the project's code: no import circles, no private names across modules.

A circle between modules (even one hidden behind an import inside a function) means neither
module can be read or changed alone; a name starting with ``_`` used from another module is a
helper whose owner may change it without looking for callers. The checks parse the source with
``ast`` (nothing is imported), over ``monas_jax/``, ``experiments/`` and ``benchmarks/``; tests
may reach into the module they test and are not checked.
"""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("monas_jax", "experiments", "benchmarks")


def _modules(root: str, packages) -> dict[str, str]:
  """Dotted module name -> file path of every .py file under the given top-level folders."""
  mods = {}
  for pkg in packages:
    for folder, _, files in os.walk(os.path.join(root, pkg)):
      for f in sorted(files):
        if f.endswith(".py"):
          path = os.path.join(folder, f)
          name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
          mods[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
  return mods


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
  """The absolute name of ``from <.. module> import`` written in module ``importer``."""
  if level == 0:
    return module or ""
  parts = importer.split(".")
  base = parts if is_package else parts[:-1]
  base = base[:len(base) - (level - 1)]
  return ".".join(base + ([module] if module else []))


def _scan(root: str, packages):
  """(import graph {module: set of project modules it imports}, [private-name findings]).

  A finding is ``"path:line: text"`` for ``from m import _x`` or ``m._x`` where m is another
  project module (dunder names such as ``__version__`` are public).
  """
  mods = _modules(root, packages)
  graph, findings = {}, []

  def private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

  for mod, path in mods.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    rel = os.path.relpath(path, root)
    deps, alias = set(), {}  # alias: local name -> project module it is bound to
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        for a in node.names:
          if a.name in mods:
            deps.add(a.name)
          top = a.name.split(".")[0]
          if a.asname and a.name in mods:
            alias[a.asname] = a.name
          elif top in mods:
            alias[top] = top
      elif isinstance(node, ast.ImportFrom):
        src = _absolute(node.module, node.level, mod, path.endswith("__init__.py"))
        for a in node.names:
          full = f"{src}.{a.name}"
          if full in mods:  # a submodule
            deps.add(full)
            alias[a.asname or a.name] = full
          elif src in mods:
            deps.add(src)
            if private(a.name):
              findings.append(f"{rel}:{node.lineno}: from {src} import {a.name}")
    for node in ast.walk(tree):
      if isinstance(node, ast.Attribute) and private(node.attr):
        chain, v = [], node.value
        while isinstance(v, ast.Attribute):
          chain.append(v.attr)
          v = v.value
        if isinstance(v, ast.Name) and v.id in alias:
          target = ".".join([alias[v.id]] + chain[::-1])
          if target in mods and target != mod:
            findings.append(f"{rel}:{node.lineno}: {target}.{node.attr}")
    deps.discard(mod)
    graph[mod] = deps
  return graph, findings


def _circles(graph) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan), each sorted."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        out.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


@pytest.fixture(scope="module")
def scanned():
  """(import graph, private-name findings) of the project, parsed once for both checks."""
  return _scan(ROOT, PACKAGES)


def test_no_import_circles(scanned):
  graph, _ = scanned
  assert "monas_jax.hardware.latency" in graph  # the scan found the package
  circles = _circles(graph)
  assert not circles, "import circles (imports inside functions count):\n" + "\n".join(
      " <-> ".join(c) for c in circles)


def test_no_private_names_across_modules(scanned):
  _, findings = scanned
  assert not findings, ("names starting with '_' used from another module (move the helper "
                        "to its user or give it a public name):\n" + "\n".join(findings))


def test_checks_find_a_planted_circle_and_reach_in(tmp_path):
  # The two checks above pass on a clean tree; this shows they would fail on a dirty one.
  pkg = tmp_path / "monas_jax"
  (pkg / "sub").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "sub" / "__init__.py").write_text("")
  (pkg / "a.py").write_text("from monas_jax.sub import b\n\ndef f():\n  return b._helper()\n")
  (pkg / "sub" / "b.py").write_text("def _helper():\n  from monas_jax import a\n  return a\n")
  (pkg / "c.py").write_text("from monas_jax.sub.b import _helper\nfrom . import a as x\n"
                            "y = x.__name__\n")
  graph, findings = _scan(str(tmp_path), ("monas_jax",))
  assert _circles(graph) == [["monas_jax.a", "monas_jax.sub.b"]]
  assert sorted(f.split(": ", 1)[1] for f in findings) == [
      "from monas_jax.sub.b import _helper", "monas_jax.sub.b._helper"]
