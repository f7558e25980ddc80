"""Immutable search state of the pruning search, and its JSON form for checkpoints."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import numpy as np

from monas_jax import space


@flax.struct.dataclass
class SearchState:
  """Where a pruning search stands.

  Attributes:
    mask: (6, 5) float32 0/1, the current supernet.
    round: rounds completed.
    key: raw PRNG key data (uint32 (2,)) for the next round.
    history: one record (a JSON-able dict) per completed round.
  """

  mask: np.ndarray
  key: np.ndarray
  round: int = flax.struct.field(pytree_node=False, default=0)
  history: tuple = flax.struct.field(pytree_node=False, default=())

  @property
  def done(self) -> bool:
    return bool(np.all(np.asarray(self.mask).sum(axis=1) == 1))

  def to_json(self) -> dict[str, Any]:
    return {"mask": np.asarray(self.mask).astype(int).tolist(), "round": self.round,
            "key": np.asarray(self.key).astype(np.uint32).tolist(), "history": list(self.history)}

  @classmethod
  def from_json(cls, d: dict[str, Any]) -> "SearchState":
    return cls(mask=space.validate_mask(d["mask"]), key=np.asarray(d["key"], np.uint32),
               round=int(d["round"]), history=tuple(d["history"]))


def initial_state(seed: int, exclude_ops=("none",)) -> SearchState:
  """The full supernet (minus ``exclude_ops`` on every edge) and the key of ``seed``."""
  key = jax.random.key_data(jax.random.key(seed))
  return SearchState(mask=space.full_mask(exclude_ops), key=np.asarray(key, np.uint32))
