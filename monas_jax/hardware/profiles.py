"""Device profiles of the latency model: schema, JSON files, built-ins, scaling.

A profile (``profiles/*.json``, schema in ``profile_from_dict``) holds the latency table of
``latency.py`` (Algorithm 1) and its compiler flags, the device, runtime, clock, batch size,
provenance and date, and for MCUs the SRAM and flash capacity that ``latency.fits_memory`` checks.
Split out of ``latency.py``, which re-exports every name here.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import os
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np

from monas_jax import space

SCHEMA_VERSION = 1
NUM_STAGES = 3
KINDS = ("mcu", "edge", "host")
# How the "table" field of a profile is laid out; the loader expands each to (stages, edges, ops).
#   network_op:         (5,)      ms for that operator on one edge of every cell of the network
#                                  together, the same on every edge (the reference MCU table).
#   network_edge_op:    (6, 5)    the same, per edge (fits from end-to-end measurements, where
#                                  stages cannot be told apart: spread evenly over the cells).
#   cell_stage_op:      (3, 5)    ms for one operator in one cell of stage s, any edge (profiling).
#   cell_stage_edge_op: (3, 6, 5) ms for one operator on one edge of one cell of stage s.
TABLE_FORMS = ("network_op", "network_edge_op", "cell_stage_op", "cell_stage_edge_op")
_FORM_SHAPE = {"network_op": (space.NUM_OPS,), "network_edge_op": (space.NUM_EDGES, space.NUM_OPS),
               "cell_stage_op": (NUM_STAGES, space.NUM_OPS),
               "cell_stage_edge_op": (NUM_STAGES, space.NUM_EDGES, space.NUM_OPS)}
_REQUIRED = ("name", "device", "kind", "clock_mhz", "runtime", "units", "batch_size", "provenance",
             "date", "cells_per_stage", "overhead_ms", "table")



@dataclasses.dataclass(frozen=True, eq=False)
class Profile:
  """A device latency profile: table, compiler flags, device metadata and memory capacity.

  ``cell_ms`` is the expanded (3, 6, 5) table in ms; ``table`` keeps the form it was stored in.
  ``sram_bytes``/``flash_bytes`` are set for MCU profiles (None otherwise). ``extra`` holds every
  other JSON field (fit report, derivation, notes) unchanged.
  """

  name: str
  device: str
  kind: str
  clock_mhz: Optional[float]
  runtime: str
  units: str
  batch_size: int
  provenance: str
  date: str
  cells_per_stage: int
  overhead_ms: float
  cell_ms: np.ndarray
  table: Mapping[str, Any]
  prune_dead: bool = False
  fold_zero_output: bool = False
  zero_output_ms: Optional[float] = None
  estimate: bool = False
  sram_bytes: Optional[int] = None
  flash_bytes: Optional[int] = None
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def arrays(self) -> "LatencyTable":
    """float32 arrays for ``latency.latency_ms`` (jit-able)."""
    import jax.numpy as jnp
    return latency_table(self, jnp.float32, jnp)

  @property
  def network_ms(self) -> np.ndarray:
    """(6, 5) ms of operator o on edge e summed over every cell of the network."""
    return self.cells_per_stage * self.cell_ms.sum(axis=0)


class LatencyTable(NamedTuple):
  """The arrays of a profile that ``latency.latency_ms`` reads: a pytree, so it can be jit/vmap
  input.

  Attributes:
    cell_ms: (3, 6, 5) ms of operator o on edge e in one cell of stage s.
    cells_per_stage: (3,) cells per stage (float, 5 in the benchmark network).
    overhead_ms: () ms of everything outside the searched cells.
    prune_dead: () 1.0 when operators that cannot reach the cell output cost nothing, else 0.0.
    fold_zero_output: () 1.0 when a cell with identically-zero output costs zero_output_ms.
    zero_output_ms: () ms of the whole network when the cell output is identically zero.
  """

  cell_ms: Any
  cells_per_stage: Any
  overhead_ms: Any
  prune_dead: Any
  fold_zero_output: Any
  zero_output_ms: Any


def latency_table(p: Profile, dtype=np.float64, xp=np) -> LatencyTable:
  """A profile's ``LatencyTable`` in ``dtype`` arrays of the array module ``xp`` (numpy or
  jax.numpy); ``Profile.arrays`` is the float32 jax.numpy one."""
  return LatencyTable(
      cell_ms=xp.asarray(p.cell_ms, dtype),
      cells_per_stage=xp.full((NUM_STAGES,), p.cells_per_stage, dtype),
      overhead_ms=xp.asarray(p.overhead_ms, dtype),
      prune_dead=xp.asarray(float(p.prune_dead), dtype),
      fold_zero_output=xp.asarray(float(p.fold_zero_output), dtype),
      zero_output_ms=xp.asarray(0.0 if p.zero_output_ms is None else p.zero_output_ms, dtype))


def expand_table(table: Mapping[str, Any], cells_per_stage: int) -> np.ndarray:
  """A profile's "table" field -> (3, 6, 5) ms per operator, edge and cell of each stage.

  ``{"form": one of TABLE_FORMS, "ops": operator names in the order of the last axis (optional,
  default ``space.OPS``), "ms": nested lists}``. Network forms are spread evenly over the
  ``3 * cells_per_stage`` cells.
  """
  if not isinstance(table, Mapping):
    raise ValueError(f"profile field 'table' must be an object, got {type(table).__name__}")
  form = table.get("form")
  if form not in TABLE_FORMS:
    raise ValueError(f"profile table form {form!r} is not one of {', '.join(TABLE_FORMS)}")
  names = list(table.get("ops", space.OPS))
  unknown = [n for n in names if n not in space.OP_INDEX]
  if unknown:
    raise ValueError(f"profile table names unknown operator {unknown[0]!r}; allowed: "
                     f"{', '.join(space.OPS)}")
  if sorted(names) != sorted(space.OPS):
    raise ValueError(f"profile table 'ops' must list each of {', '.join(space.OPS)} once, got "
                     f"{names}")
  try:
    ms = np.asarray(table["ms"], np.float64)
  except (KeyError, TypeError, ValueError) as err:
    raise ValueError(f"profile table needs numeric 'ms' of shape {_FORM_SHAPE[form]}: {err}")
  if ms.shape != _FORM_SHAPE[form]:
    raise ValueError(f"profile table 'ms' of form {form!r} must have shape {_FORM_SHAPE[form]}, "
                     f"got {ms.shape}")
  if not np.all(np.isfinite(ms)) or np.any(ms < 0):
    raise ValueError("profile table entries must be finite and >= 0 ms")
  ms = ms[..., [names.index(o) for o in space.OPS]]  # reorder to space.OPS
  if form.startswith("network"):
    ms = ms / (NUM_STAGES * cells_per_stage)
    ms = np.broadcast_to(ms, (NUM_STAGES,) + _FORM_SHAPE["network_edge_op"])
  elif form == "cell_stage_op":
    ms = np.broadcast_to(ms[:, None, :], (NUM_STAGES, space.NUM_EDGES, space.NUM_OPS))
  return np.array(ms, np.float64)


def _number(d, key, *, allow_none=False, integer=False, positive=False):
  v = d.get(key)
  if v is None and allow_none:
    return None
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
    raise ValueError(f"profile field {key!r} must be a finite number, got {v!r}")
  if integer and int(v) != v:
    raise ValueError(f"profile field {key!r} must be an integer, got {v!r}")
  if positive and v <= 0 or v < 0:
    raise ValueError(f"profile field {key!r} must be {'> 0' if positive else '>= 0'}, got {v!r}")
  return int(v) if integer else float(v)


def profile_from_dict(d: Mapping[str, Any]) -> Profile:
  """Validates a profile's JSON object and builds the Profile; errors name the bad field.

  Required: name, device, kind (mcu/edge/host), clock_mhz (number, or null when unknown, with a
  reason in clock_note), runtime, units ("ms"), batch_size, provenance, date, cells_per_stage,
  overhead_ms, table (see ``expand_table``); MCU profiles also sram_bytes and flash_bytes.
  Optional: prune_dead, fold_zero_output, zero_output_ms (required when folding), estimate,
  network (``{"image_size", "image_channels", "channels"}`` the table was measured at; default
  32, 3, 16: NAS-Bench-201's CIFAR network).
  """
  if not isinstance(d, Mapping):
    raise ValueError(f"a profile must be a JSON object, got {type(d).__name__}")
  missing = [k for k in _REQUIRED if k not in d]
  if missing:
    raise ValueError(f"profile {d.get('name', '?')!r} lacks field(s) {', '.join(missing)}")
  for key in ("name", "device", "runtime", "provenance", "date"):
    if not isinstance(d[key], str) or not d[key].strip():
      raise ValueError(f"profile field {key!r} must be a non-empty string, got {d[key]!r}")
  if d["kind"] not in KINDS:
    raise ValueError(f"profile field 'kind' is {d['kind']!r}; allowed: {', '.join(KINDS)}")
  if d["units"] != "ms":
    raise ValueError(f"profile field 'units' must be 'ms' (convert the table), got {d['units']!r}")
  if d["clock_mhz"] is None and not d.get("clock_note"):
    raise ValueError("profile field 'clock_mhz' is null: say why in 'clock_note'")
  clock = _number(d, "clock_mhz", allow_none=True, positive=True)
  batch = _number(d, "batch_size", integer=True, positive=True)
  n = _number(d, "cells_per_stage", integer=True, positive=True)
  overhead = _number(d, "overhead_ms")
  for key in ("prune_dead", "fold_zero_output", "estimate"):
    if not isinstance(d.get(key, False), bool):
      raise ValueError(f"profile field {key!r} must be true or false, got {d[key]!r}")
  fold = d.get("fold_zero_output", False)
  zero_ms = _number(d, "zero_output_ms", allow_none=not fold)
  sram = flash = None
  if d["kind"] == "mcu" or "sram_bytes" in d or "flash_bytes" in d:
    sram = _number(d, "sram_bytes", integer=True, positive=True)
    flash = _number(d, "flash_bytes", integer=True, positive=True)
  net = d.get("network")
  if net is not None:
    allowed = ("image_size", "image_channels", "channels")
    if not isinstance(net, Mapping) or any(
        k not in allowed or isinstance(v, bool) or not isinstance(v, int) or v < 1
        for k, v in net.items()):
      raise ValueError(f"profile field 'network' is {net!r}; allowed: an object of positive "
                       f"integers {', '.join(allowed)} (the network the table was measured on)")
  known = set(_REQUIRED) | {"prune_dead", "fold_zero_output", "zero_output_ms", "estimate",
                            "sram_bytes", "flash_bytes"}
  return Profile(
      name=d["name"], device=d["device"], kind=d["kind"], clock_mhz=clock, runtime=d["runtime"],
      units="ms", batch_size=batch, provenance=d["provenance"], date=d["date"],
      cells_per_stage=n, overhead_ms=overhead, cell_ms=expand_table(d["table"], n),
      table=dict(d["table"]), prune_dead=d.get("prune_dead", False), fold_zero_output=fold,
      zero_output_ms=zero_ms, estimate=d.get("estimate", False), sram_bytes=sram,
      flash_bytes=flash, extra={k: v for k, v in d.items() if k not in known})


def profile_to_dict(p: Profile) -> dict[str, Any]:
  """The JSON object of a profile (inverse of ``profile_from_dict``)."""
  d: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
  d.update(name=p.name, device=p.device, kind=p.kind, clock_mhz=p.clock_mhz, runtime=p.runtime,
           units=p.units, batch_size=p.batch_size, provenance=p.provenance, date=p.date,
           estimate=p.estimate)
  if p.sram_bytes is not None:
    d.update(sram_bytes=p.sram_bytes, flash_bytes=p.flash_bytes)
  d.update(cells_per_stage=p.cells_per_stage, overhead_ms=p.overhead_ms,
           prune_dead=p.prune_dead, fold_zero_output=p.fold_zero_output,
           zero_output_ms=p.zero_output_ms, table=dict(p.table))
  d.update({k: v for k, v in p.extra.items() if k not in d})
  return d


def profiles_dir():
  """The folder of the built-in profile JSON files (an ``importlib.resources`` Traversable)."""
  return importlib.resources.files("monas_jax") / "hardware" / "profiles"


def builtin_profiles() -> list[str]:
  """Names of the profiles shipped in ``monas_jax/hardware/profiles/``, sorted."""
  return sorted(f.name[:-len(".json")] for f in profiles_dir().iterdir()
                if f.name.endswith(".json"))


def _parse_profile_text(text: str, source: str) -> Profile:
  try:
    d = json.loads(text)
  except json.JSONDecodeError as err:
    raise ValueError(f"{source} is not valid JSON: {err}") from None
  try:
    return profile_from_dict(d)
  except ValueError as err:
    raise ValueError(f"{source}: {err}") from None


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> Profile:
  return _parse_profile_text((profiles_dir() / f"{name}.json").read_text(),
                             f"built-in profile {name!r}")


def load_profile(name_or_path) -> Profile:
  """A built-in profile by name (``builtin_profiles()``) or a profile JSON file by path.

  An I/O helper. Built-ins are read once per process; files are read on every call. A Profile
  passes through unchanged.
  """
  if isinstance(name_or_path, Profile):
    return name_or_path
  key = os.fspath(name_or_path)
  if key in builtin_profiles():
    return _load_builtin(key)
  if not os.path.isfile(key):
    raise ValueError(f"unknown profile {key!r}: neither a built-in ({', '.join(builtin_profiles())})"
                     f" nor a JSON file")
  with open(key, "rb") as f:
    raw = f.read()
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as err:
    raise ValueError(f"{key} is not a profile JSON file (not UTF-8 text: {err})") from None
  return _parse_profile_text(text, key)


def save_profile(profile: Profile, path) -> None:
  """Writes a profile as JSON, atomically (temporary file, then rename). An I/O helper."""
  d = profile_to_dict(profile)
  profile_from_dict(d)  # never write a file that would not load
  from monas_jax import io
  with io.atomic_file(os.fspath(path), ".json") as f:
    json.dump(d, f, indent=2)
    f.write("\n")


def make_profile(*, name: str, device: str, kind: str, clock_mhz: Optional[float], runtime: str,
                 batch_size: int, provenance: str, date: str, table: Mapping[str, Any],
                 overhead_ms: float, cells_per_stage: int = 5, prune_dead: bool = False,
                 fold_zero_output: bool = False, zero_output_ms: Optional[float] = None,
                 estimate: bool = False, sram_bytes: Optional[int] = None,
                 flash_bytes: Optional[int] = None, **extra) -> Profile:
  """Builds and validates a Profile from fields (the same checks as loading its JSON)."""
  d = dict(name=name, device=device, kind=kind, clock_mhz=clock_mhz, runtime=runtime, units="ms",
           batch_size=batch_size, provenance=provenance, date=date, cells_per_stage=cells_per_stage,
           overhead_ms=float(overhead_ms), table=_jsonable(table), prune_dead=prune_dead,
           fold_zero_output=fold_zero_output, zero_output_ms=zero_output_ms, estimate=estimate)
  if sram_bytes is not None or flash_bytes is not None:
    d.update(sram_bytes=sram_bytes, flash_bytes=flash_bytes)
  d.update(_jsonable(extra))
  return profile_from_dict(d)


def _jsonable(x):
  if isinstance(x, Mapping):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  if isinstance(x, np.generic):
    return x.item()
  return x


# ---------------------------------------------------------------------------------------------
# The small MCU: an analytic scaling of the large one.

COMPUTE_BOUND_OPS = ("nor_conv_1x1", "nor_conv_3x3")
MEMORY_BOUND_OPS = ("skip_connect", "avg_pool_3x3")


def scale_profile(base: Profile, *, name: str, device: str, clock_mhz: float, runtime: str,
                  compute_issue_factor: float, memory_issue_factor: float, date: str,
                  provenance: str, sram_bytes: Optional[int], flash_bytes: Optional[int],
                  kind: str = "mcu") -> Profile:
  """Derives a profile for a slower core of the same family by an analytic scaling.

  Every entry scales with the clock ratio ``base.clock_mhz / clock_mhz``; compute-bound operators
  (convolutions) further by ``compute_issue_factor`` (e.g. dual- vs single-issue MAC loops) and
  memory-bound ones (skip, pooling) by ``memory_issue_factor``. The overhead scales like compute.
  The result is marked ``estimate`` and records the factors under ``derivation``.
  """
  if base.clock_mhz is None:
    raise ValueError(f"profile {base.name!r} has no clock_mhz to scale from")
  clock_ratio = base.clock_mhz / clock_mhz
  factor = np.ones(space.NUM_OPS)
  for o in COMPUTE_BOUND_OPS:
    factor[space.OP_INDEX[o]] = clock_ratio * compute_issue_factor
  for o in MEMORY_BOUND_OPS:
    factor[space.OP_INDEX[o]] = clock_ratio * memory_issue_factor
  form = base.table["form"]
  names = list(base.table.get("ops", space.OPS))
  ms = np.asarray(base.table["ms"], np.float64) * factor[[space.OP_INDEX[n] for n in names]]
  derivation = {
      "from": base.name, "clock_ratio": clock_ratio,
      "compute_issue_factor": compute_issue_factor, "memory_issue_factor": memory_issue_factor,
      "compute_bound_ops": list(COMPUTE_BOUND_OPS), "memory_bound_ops": list(MEMORY_BOUND_OPS),
      "factor_per_op": dict(zip(space.OPS, factor.round(6).tolist()))}
  return make_profile(
      name=name, device=device, kind=kind, clock_mhz=clock_mhz, runtime=runtime,
      batch_size=base.batch_size, provenance=provenance, date=date,
      table={"form": form, "ops": names, "ms": np.round(ms, 6)},
      overhead_ms=round(base.overhead_ms * clock_ratio * compute_issue_factor, 6),
      cells_per_stage=base.cells_per_stage, prune_dead=base.prune_dead,
      fold_zero_output=base.fold_zero_output, zero_output_ms=base.zero_output_ms, estimate=True,
      sram_bytes=sram_bytes, flash_bytes=flash_bytes, derivation=derivation)


# ---------------------------------------------------------------------------------------------
# Another network size: per-operator cost scaling.


class MeasuredNetwork(NamedTuple):
  """The network a profile's table was measured (or fitted) on.

  Attributes:
    image_size: side of the square input, pixels.
    image_channels: channels of the input (1 grayscale, 3 RGB).
    channels: C, the first stage's width (stages have C, 2C, 4C).
    cells_per_stage: N.
  """

  image_size: int
  image_channels: int
  channels: int
  cells_per_stage: int

  def label(self) -> str:
    return (f"{self.image_size}x{self.image_size}x{self.image_channels}, C={self.channels}, "
            f"N={self.cells_per_stage}")


# NAS-Bench-201's network on CIFAR input: what every built-in table was measured or derived for.
# A profile names another one in its optional "network" field (``experiments.latency fit
# --image_size= --image_channels= --channels=``); ``cells_per_stage`` is the profile's own.
REFERENCE_IMAGE_SIZE, REFERENCE_IMAGE_CHANNELS, REFERENCE_CHANNELS = 32, 3, 16


def measured_network(p: Profile) -> MeasuredNetwork:
  """The network ``p``'s table holds times for: its "network" field, else NAS-Bench-201's
  (32x32x3 input, C=16) at the profile's ``cells_per_stage``."""
  net = dict(p.extra.get("network") or {})
  return MeasuredNetwork(int(net.get("image_size", REFERENCE_IMAGE_SIZE)),
                         int(net.get("image_channels", REFERENCE_IMAGE_CHANNELS)),
                         int(net.get("channels", REFERENCE_CHANNELS)), p.cells_per_stage)


def _check_network(net: MeasuredNetwork) -> None:
  for field, v in zip(MeasuredNetwork._fields, net):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
      raise ValueError(f"network {field} = {v!r} is not allowed: a positive integer")
  if net.image_size % 4:
    raise ValueError(f"network image_size = {net.image_size} is not allowed: a multiple of 4 (the "
                     "network halves it twice)")


def stage_cost_factors(ref: MeasuredNetwork, net: MeasuredNetwork) -> np.ndarray:
  """(3, 5) factor by which one cell's operator time grows from ``ref`` to ``net``, per stage.

  Stage s works on maps of side ``image_size / 2**s`` with ``channels * 2**s`` channels. The
  convolutions' time is taken proportional to their multiply-accumulates, C_s^2 x H_s x W_s;
  skip, pooling and ``none`` (a zero map, written when read) to the elements they move,
  C_s x H_s x W_s. The factor does not depend on s for sides divisible by 4.
  """
  out = np.ones((NUM_STAGES, space.NUM_OPS))
  for s in range(NUM_STAGES):
    hw = (net.image_size / 2 ** s) ** 2 / (ref.image_size / 2 ** s) ** 2
    c = (net.channels * 2 ** s) / (ref.channels * 2 ** s)
    for o in COMPUTE_BOUND_OPS:
      out[s, space.OP_INDEX[o]] = c * c * hw
    for o in MEMORY_BOUND_OPS + ("none",):
      out[s, space.OP_INDEX[o]] = c * hw
  return out


def outer_macs(net: MeasuredNetwork) -> int:
  """Multiply-accumulates of the network outside its cells, per image: the stem
  (3x3, image_channels -> C at H x W) and the two reduction blocks (3x3 stride-2 conv_a
  C_{s-1} -> C_s, 3x3 conv_b C_s -> C_s and the shortcut's 1x1 C_{s-1} -> C_s, at H_s x W_s).
  The head's classifier (4C x classes) is left out: it depends on the classes, not the size,
  and is under 0.01 % of the rest at NAS-Bench-201's size."""
  h, c = net.image_size, net.channels
  total = 9 * net.image_channels * c * h * h
  for s in (1, 2):
    c_in, c, h = c, 2 * c, h // 2
    total += (9 * c_in * c + 9 * c * c + c_in * c) * h * h
  return total


def scale_to_network(base: Profile, net: MeasuredNetwork) -> Profile:
  """``base``'s table carried to another input size, input channels, C or N by operator cost.

  The model (an estimate, marked so):
  - each cell operator's entry of stage s times ``stage_cost_factors``: convolutions by
    C_s^2 x H_s x W_s, skip, pooling and ``none`` by C_s x H_s x W_s, relative to the network
    the table was measured on (``measured_network``);
  - N cells per stage: Algorithm 1's sum runs over the new N (a per-cell time does not depend
    on N);
  - ``overhead_ms`` (stem, reduction blocks, head, runtime) times the ratio of ``outer_macs``;
  - ``zero_output_ms`` (the network folded to a constant: no tensor is computed) unchanged.

  Returns ``base`` itself (bit-identical numbers) when ``net`` is the measured network; else a
  profile of the same name with the scaled (3, 6, 5) table, ``estimate`` true, the new
  ``network`` field and a ``scaled`` field holding the factors and ``provenance`` (one line).
  """
  _check_network(net)
  ref = measured_network(base)
  if tuple(net) == tuple(ref):
    return base
  factors = stage_cost_factors(ref, net)
  overhead_factor = outer_macs(net) / outer_macs(ref)
  provenance = (f"scaled from {base.name} measured at {ref.label()} to {net.label()} by "
                f"operator cost (convolutions C^2 x H x W, skip and pooling C x H x W, stem and "
                f"reductions by their MACs)")
  scaled = {"provenance": provenance, "from_network": ref._asdict(), "from_profile": base.name,
            "cell_factor_per_stage_op": factors.round(9).tolist(),
            "overhead_factor": round(overhead_factor, 9)}
  extra = {k: v for k, v in base.extra.items() if k not in ("network", "scaled")}
  return make_profile(
      name=base.name, device=base.device, kind=base.kind, clock_mhz=base.clock_mhz,
      runtime=base.runtime, batch_size=base.batch_size,
      provenance=f"{provenance}; {base.provenance}", date=base.date,
      table={"form": "cell_stage_edge_op", "ops": list(space.OPS),
             "ms": base.cell_ms * factors[:, None, :]},
      overhead_ms=base.overhead_ms * overhead_factor, cells_per_stage=net.cells_per_stage,
      prune_dead=base.prune_dead, fold_zero_output=base.fold_zero_output,
      zero_output_ms=base.zero_output_ms, estimate=True, sram_bytes=base.sram_bytes,
      flash_bytes=base.flash_bytes,
      **{**extra, "network": {"image_size": net.image_size, "image_channels": net.image_channels,
                              "channels": net.channels}, "scaled": scaled})
