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


def read_arrays(path: str) -> tuple[dict, Any]:
  """Reads a file of ``write_arrays_atomic``: (name -> numpy array, meta)."""
  import numpy as np
  with np.load(path, allow_pickle=False) as z:
    meta = json.loads(bytes(z["__meta__"]).decode())
    arrays = {k: np.asarray(z[k]) for k in z.files if k != "__meta__"}
  return arrays, meta
