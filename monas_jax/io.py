"""Small I/O helpers of the shell: atomic JSON writes and run metadata."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import tempfile
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
  """Yields a temporary path in ``path``'s folder for a writer that takes a file name; on
  success it is renamed over ``path``, on any error removed."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = "", mode: str = "w", **open_kw):
  """Yields a file in ``path``'s folder; on success it is synced and renamed over ``path``, on
  any error removed (a reader sees the old file or the new one, never half of one)."""
  with atomic_path(path, suffix) as tmp:
    with open(tmp, mode, **open_kw) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())


def write_json_atomic(path: str, obj: Any) -> None:
  """Writes JSON to a temporary file in the same folder, then renames it over ``path``."""
  with atomic_file(path, ".json") as f:
    json.dump(obj, f, indent=1, sort_keys=False, default=_default)
    f.write("\n")


def _default(o):
  import numpy as np
  if isinstance(o, np.generic):
    return o.item()
  if isinstance(o, np.ndarray):
    return o.tolist()
  if isinstance(o, (tuple, set, frozenset)):
    return list(o)
  raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def environment() -> dict[str, Any]:
  """Versions and device of this process, for result records."""
  import jax
  import flax
  import numpy as np
  import optax
  import monas_jax
  dev = jax.devices()[0]
  return {
      "versions": {"monas_jax": monas_jax.__version__, "python": sys.version.split()[0],
                   "jax": jax.__version__, "jaxlib": _version("jaxlib"), "flax": flax.__version__,
                   "optax": optax.__version__, "numpy": np.__version__},
      "device": {"platform": dev.platform, "kind": getattr(dev, "device_kind", ""),
                 "count": jax.device_count(), "host": platform.node(),
                 "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
  }


def _version(name: str) -> str:
  try:
    from importlib.metadata import version
    return version(name)
  except Exception:  # noqa: BLE001  (metadata missing in odd installs)
    return "unknown"


def write_arrays_atomic(path: str, arrays: dict, meta: Any) -> None:
  """Writes named numpy arrays plus a JSON-able ``meta`` as ONE .npz file, atomically.

  One file (meta stored as a JSON string under ``__meta__``) so that arrays and the metadata that
  describes them cannot go out of step when a process is killed between two writes.
  """
  import numpy as np
  if "__meta__" in arrays:
    raise ValueError("'__meta__' is reserved for the metadata")
  with atomic_file(path, ".npz", "wb") as f:
    np.savez(f, __meta__=np.frombuffer(json.dumps(meta, default=_default).encode(), np.uint8),
             **arrays)


ARRAYS_FILE = ("a monas_jax .npz of arrays and a '__meta__' JSON entry, such as a training "
               "checkpoint")


def _reason(err: BaseException) -> str:
  """A one-line reason for a failed read, without advice to unpickle (numpy's ValueError for
  object arrays suggests ``allow_pickle=True``; nothing here ever loads pickled data)."""
  text = " ".join(str(err).split())
  if "pickle" in text.lower():
    return "it holds pickled Python objects, which are never loaded (they could run code)"
  return f"{type(err).__name__}: {text}" if text else type(err).__name__


def refuse(path, expected: str, err) -> ValueError:
  """The ValueError of a reader that cannot use ``path``: one line naming the file, what it
  expected and why (``err``: an exception or a short text)."""
  why = err if isinstance(err, str) else _reason(err)
  return ValueError(f"{path}: not {expected} ({why})")


def read_json(path, expected: str, kind: type = dict) -> Any:
  """Reads a JSON file whose top-level value is a ``kind`` (dict or list).

  A missing file raises FileNotFoundError; anything else wrong (binary junk, a truncated or
  non-JSON file, another top-level type) a one-line ValueError naming ``path`` and
  ``expected`` (e.g. "a search's result.json").
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file (expected {expected})")
  try:
    with open(path, "rb") as f:
      obj = json.loads(f.read().decode("utf-8"))
  except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
    raise refuse(path, expected, err) from None
  if not isinstance(obj, kind):
    raise refuse(path, expected, f"the top level is a JSON {type(obj).__name__}, expected a "
                 f"JSON {'object' if kind is dict else kind.__name__}")
  return obj


def read_arrays(path: str, expected: str = ARRAYS_FILE) -> tuple[dict, Any]:
  """Reads a file of ``write_arrays_atomic``: (name -> numpy array, meta).

  Never unpickles. A missing file raises FileNotFoundError; a damaged or foreign file (truncated,
  not a zip, no ``__meta__``, object arrays) a one-line ValueError naming ``path`` and
  ``expected``.
  """
  import numpy as np
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file (expected {expected})")
  try:
    with np.load(path, allow_pickle=False) as z:
      names = list(z.files)
      meta = bytes(z["__meta__"]) if "__meta__" in names else None
      arrays = {k: np.asarray(z[k]) for k in names if k != "__meta__"}
  except Exception as err:  # noqa: BLE001  (zip, EOF, OS, header and pickle errors of junk)
    raise refuse(path, expected, err) from None
  if meta is None:
    held = ", ".join(names[:5]) or "nothing"
    raise refuse(path, expected, f"no '__meta__' entry; it holds {held}")
  try:
    meta = json.loads(meta.decode("utf-8"))
  except (UnicodeDecodeError, ValueError) as err:
    raise refuse(path, expected, f"'__meta__' is not JSON: {_reason(err)}") from None
  if not isinstance(meta, dict):
    raise refuse(path, expected, f"'__meta__' is a JSON {type(meta).__name__}, not an object")
  return arrays, meta
