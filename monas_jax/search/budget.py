"""Hardware budgets of a search: latency (ms) and MCU memory (flash, SRAM).

A supernet is *feasible* when at least one single-path cell inside it meets every budget. The
search only prunes into feasible supernets; since every cell of a feasible supernet survives
some prune on each edge, it always ends on a cell that meets the budgets.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np

from monas_jax import data, space


class BudgetError(ValueError):
  """No cell reachable from the starting supernet meets the budget."""


@functools.lru_cache(maxsize=None)
def _memory_tables(dataset, dtype: str, channels: int = 16, cells_per_stage: int = 5,
                   model: str = "tflm") -> tuple[np.ndarray, np.ndarray]:
  """(flash, SRAM) bytes of every cell, lexicographic order (base-5 operator code), for the
  C = channels, N = cells_per_stage network on ``dataset``'s input (name or data.DataSpec), by
  ``hardware.memory.memory_table``'s ``model``."""
  from monas_jax.hardware import memory
  ops = np.array(list(space.all_ops_lexicographic()), np.int64)
  return memory.memory_table(ops, dataset, channels, cells_per_stage, dtype, model)


def _codes(ops: np.ndarray) -> np.ndarray:
  return (ops * space.NUM_OPS ** np.arange(space.NUM_EDGES - 1, -1, -1)).sum(axis=1)


@dataclasses.dataclass(frozen=True)
class Budget:
  """Latency and/or memory limits. Unset limits are None."""

  profile: object = None  # hardware.latency.Profile, for the latency table and MCU capacities
  latency_ms: Optional[float] = None
  sram_bytes: Optional[int] = None
  flash_bytes: Optional[int] = None
  dataset: object = "cifar10"  # a name of data.DATASETS or a data.DataSpec
  dtype: str = "int8"
  channels: int = 16  # C of the deployed network
  cells_per_stage: int = 5  # N
  memory_model: str = "tflm"  # hardware.memory.MODELS: how flash and SRAM are counted

  @property
  def active(self) -> bool:
    return any(v is not None for v in (self.latency_ms, self.sram_bytes, self.flash_bytes))

  def cells(self, mask) -> dict[str, np.ndarray]:
    """Every single-path cell inside ``mask`` with its latency and memory."""
    return self._table(np.array(space.single_path_ops(mask), np.int64))

  def _table(self, ops: np.ndarray) -> dict[str, np.ndarray]:
    """Cells (m, 6) with the latency and memory the active limits need."""
    ops = np.asarray(ops, np.int64).reshape(-1, space.NUM_EDGES)
    out = {"ops": ops}
    if self.latency_ms is not None:
      from monas_jax.hardware import latency
      out["latency_ms"] = latency.estimate_many_ms(self.profile, ops)
    if self.sram_bytes is not None or self.flash_bytes is not None:
      flash, sram = _memory_tables(self.dataset, self.dtype, self.channels,
                                   self.cells_per_stage, self.memory_model)
      codes = _codes(ops)
      out["flash_bytes"], out["peak_sram_bytes"] = flash[codes], sram[codes]
    return out

  def feasible(self, mask) -> bool:
    """Whether some single-path cell inside ``mask`` (6, 5) meets every budget."""
    if not self.active:
      return True
    return bool(self.meets(space.single_path_ops(mask)).any())

  def meets(self, ops) -> np.ndarray:
    """(m,) bool: which cells (m, 6 op indices) meet every budget."""
    return self._ok(self._table(ops)) if self.active else np.ones(len(ops), bool)

  def within(self, mask) -> np.ndarray:
    """(m, 6) op indices of the single-path cells inside ``mask`` that meet every budget."""
    ops = np.array(space.single_path_ops(mask), np.int64).reshape(-1, space.NUM_EDGES)
    return ops[self.meets(ops)]

  def _ok(self, c: dict[str, np.ndarray]) -> np.ndarray:
    ok = np.ones(len(c["ops"]), bool)
    if self.latency_ms is not None:
      ok &= c["latency_ms"] <= self.latency_ms + 1e-9
    if self.flash_bytes is not None:
      ok &= c["flash_bytes"] <= self.flash_bytes
    if self.sram_bytes is not None:
      ok &= c["peak_sram_bytes"] <= self.sram_bytes
    return ok

  def check_reachable(self, mask) -> None:
    """Raises BudgetError naming the smallest reachable values when no cell meets the budget."""
    if self.feasible(mask):
      return
    c = self.cells(mask)
    parts = []
    if self.latency_ms is not None:
      i = int(np.argmin(c["latency_ms"]))
      parts.append(f"latency budget {self.latency_ms:g} ms: the smallest reachable latency is "
                   f"{c['latency_ms'][i]:.4g} ms ({space.ops_to_arch_str(c['ops'][i])})")
    if self.flash_bytes is not None:
      parts.append(f"flash {self.flash_bytes} B: the smallest reachable is "
                   f"{int(c['flash_bytes'].min())} B")
    if self.sram_bytes is not None:
      parts.append(f"SRAM {self.sram_bytes} B: the smallest reachable peak is "
                   f"{int(c['peak_sram_bytes'].min())} B")
    spec = data.as_spec(self.dataset)
    raise BudgetError("no cell of the search space meets the budget together ("
                      + "; ".join(parts) + f"; {self.dtype} deployment, {spec.name} input "
                      f"{spec.image_size}x{spec.image_size}x{spec.channels}, C={self.channels}, "
                      f"N={self.cells_per_stage})" + self._memory_advice(c))

  def _memory_advice(self, c: dict[str, np.ndarray]) -> str:
    """Where no reachable cell fits the MCU's memory whatever its latency: which C, N or image
    size would (``memory.fitting_networks``); the search itself cannot shrink the stem's output.
    Empty where memory is not what fails."""
    if self.sram_bytes is None and self.flash_bytes is None:
      return ""
    fit = ((c["flash_bytes"] <= (self.flash_bytes or np.inf))
           & (c["peak_sram_bytes"] <= (self.sram_bytes or np.inf)))
    if fit.any():
      return ""
    from monas_jax.hardware import memory
    spec = data.as_spec(self.dataset)
    f = memory.fitting_networks(c["ops"], spec, self.channels, self.cells_per_stage,
                                self.sram_bytes or np.iinfo(np.int64).max,
                                self.flash_bytes or np.iinfo(np.int64).max, self.dtype,
                                self.memory_model)
    s, n = spec.image_size, self.cells_per_stage
    stem = memory.stem_output_bytes(spec, self.channels, self.dtype)
    ways = []
    if f["channels"] is not None:
      ways.append(f"config.network.channels <= {f['channels']} (at N={n}, {s}x{s})")
    if f["cells_per_stage"] is not None:
      ways.append(f"config.network.cells_per_stage <= {f['cells_per_stage']} (at "
                  f"C={self.channels}, {s}x{s})")
    if f["image_size"] is not None:
      ways.append(f"config.image_size <= {f['image_size']} (at C={self.channels}, N={n})")
    if not ways and f["channels_at_one_cell"] is not None:
      ways.append(f"config.network.channels <= {f['channels_at_one_cell']} with "
                  f"config.network.cells_per_stage = 1 (at {s}x{s})")
    advice = ("would fit: " + ", or ".join(ways) if ways else
              "no smaller C, N or image size fits this MCU either")
    return (f"; the stem's output alone is {s}x{s}x{self.channels} = {stem} B in {self.dtype}, "
            f"which no cell changes; {advice}")


def from_config(config) -> Budget:
  """The budget a config asks for (latency_budget_ms; enforce_memory with an MCU profile)."""
  from monas_jax.hardware import latency
  # The latency budget is checked with the table for the config's network (scaled where needed).
  profile = latency.config_profile(config)
  s = config.search
  sram = flash = None
  if s.enforce_memory:
    if profile.sram_bytes is None or profile.flash_bytes is None:
      raise ValueError(f"config.search.enforce_memory = True needs an MCU profile with SRAM and "
                       f"flash sizes; config.hardware.profile = {config.hardware.profile!r} has none")
    sram, flash = profile.sram_bytes, profile.flash_bytes
  net = config.network
  return Budget(profile=profile, latency_ms=s.latency_budget_ms, sram_bytes=sram,
                flash_bytes=flash, dataset=data.config_spec(config), dtype=s.memory_dtype,
                channels=net.channels, cells_per_stage=net.cells_per_stage,
                memory_model=s.memory_model)
