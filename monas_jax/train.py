"""Training one NAS-Bench-201 cell's network with optax (the NAS-Bench-201 recipe by default).

The network is ``models.Network(C, N, classes, ops_per_edge=cell)`` (C=16, N=5 in the benchmark),
NHWC float32 input normalised per channel. Defaults follow NAS-Bench-201's training of every cell
(Dong & Yang, 2020, Table 3): SGD with Nesterov momentum 0.9, learning rate 0.1 with cosine decay
to 0 over all steps, weight decay 5e-4 on every parameter (PyTorch's ``SGD(weight_decay=...)``
adds it to the gradient before momentum, as ``optax.add_decayed_weights`` does here), batch 256,
200 epochs, random crop with 4-pixel zero padding (2 for ImageNet16-120) and horizontal flip.

The training state ``TrainState(step, params, batch_stats, opt_state)`` is a pytree; one jitted
step maps it to the next. Everything random is a pure function of ``(seed, epoch, step)``: the
epoch's shuffle and each step's augmentation key, so a run restarted from a checkpoint at any
step continues to bit-identical parameters (same device and XLA build).

Differences from the PyTorch recipe, on purpose: the last partial batch of an epoch is dropped
(one compiled step shape; at 50,000 images and batch 256 it is 80 images an epoch); the bundled
2,000-image sample, when no data directory is given, is split into a training part and a held-out
part (stratified, fixed split) that stands in for the test set.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from typing import Any, Callable, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from monas_jax import benchmark, data, io, models, space

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
RESULT = "result.json"


def default_config(dataset: str = "cifar10") -> ml_collections.ConfigDict:
  """Config of a training run: dataset, data_dir, seed and the ``train`` section.

  Every field can be overridden from the command line, e.g. ``--config.train.epochs=1``.
  """
  # dataset, data_dir (None trains on the bundled sample, announced), image_size,
  # image_channels, norm_mean/norm_std, num_classes (as in the search's config), seed.
  c = data.command_config(dataset)
  t = c.train = ml_collections.ConfigDict()
  t.channels = 16  # C
  t.cells_per_stage = 5  # N
  t.epochs = 200
  t.batch_size = 256
  t.learning_rate = 0.1  # peak; cosine decay to 0 over epochs * steps_per_epoch steps
  t.momentum = 0.9
  t.nesterov = True
  t.weight_decay = 5e-4
  t.augment = True  # random crop (data.PAD) + horizontal flip
  # Parameter init: 'torch_default' is what the benchmark's PyTorch networks start from
  # (uniform +-1/sqrt(fan_in)); 'kaiming' is the normal fan-out init of the indicators.
  t.init = "torch_default"
  t.eval_batch_size = 500
  # Bundled sample only: the fraction held out for evaluation (stratified, fixed split).
  t.holdout_fraction = 0.2
  # Write a checkpoint also every this many steps inside an epoch (0: at epoch ends only).
  t.checkpoint_every_steps = 0
  # Stop after this many steps in total, checkpointed (0: no limit). For tests and time-boxed
  # runs; a later run with a larger limit or none continues from there.
  t.max_steps = 0
  c.lock()
  return c


def _fail(field, value, allowed):
  raise ValueError(f"config.{field} = {value!r} is not allowed: {allowed}")


def validate_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Raises ValueError naming the first bad field; returns the config unchanged."""
  if "train" not in c:
    raise ValueError("the config has no 'train' section: training takes --config=configs/train.py"
                     "[:dataset] (the search configs do not)")
  data.check_config_fields(c)
  if c.data_dir is None and c.dataset == "imagenet16_120":
    _fail("data_dir", None, "a directory with Imagenet16_train/ (no ImageNet16-120 sample is "
          "bundled)")
  if not isinstance(c.seed, int) or c.seed < 0:
    _fail("seed", c.seed, "a non-negative integer")
  t = c.train
  for f in ("channels", "cells_per_stage", "epochs", "batch_size", "eval_batch_size"):
    if not isinstance(t[f], int) or isinstance(t[f], bool) or t[f] < 1:
      _fail(f"train.{f}", t[f], "a positive integer")
  for f in ("checkpoint_every_steps", "max_steps"):
    if not isinstance(t[f], int) or isinstance(t[f], bool) or t[f] < 0:
      _fail(f"train.{f}", t[f], "a non-negative integer (0 = off)")
  if not float(t.learning_rate) > 0:
    _fail("train.learning_rate", t.learning_rate, "a positive number")
  if not 0.0 <= float(t.momentum) < 1.0:
    _fail("train.momentum", t.momentum, "a number in [0, 1)")
  if not float(t.weight_decay) >= 0:
    _fail("train.weight_decay", t.weight_decay, "a non-negative number")
  if t.init not in ("kaiming", "torch_default"):
    _fail("train.init", t.init, "'kaiming' or 'torch_default'")
  if not 0.0 < float(t.holdout_fraction) < 1.0:
    _fail("train.holdout_fraction", t.holdout_fraction, "a number in (0, 1)")
  return c


def config_hash(c: ml_collections.ConfigDict, arch: space.Arch) -> str:
  """Hash of what changes the trained parameters (not checkpointing or the step limit)."""
  d = json.loads(c.to_json())
  for k in ("checkpoint_every_steps", "max_steps", "eval_batch_size"):
    d["train"].pop(k, None)
  d["arch"] = arch.to_string()
  return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- data

@dataclasses.dataclass(frozen=True)
class Split:
  """Images of one run: uint8 (n, s, s, c) NHWC and int32 (n,) labels, train and eval parts."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_eval: np.ndarray
  y_eval: np.ndarray
  source: str  # where they came from, for the result record
  eval_name: str  # 'test' (official split), 'val' (a folder's) or 'held-out' (bundled sample)
  spec: Optional[data.DataSpec] = None  # size, channels, classes, statistics (None: c.dataset's)
  record: Optional[dict] = None  # data.ConfigImages.record: classes, counts, statistics


def holdout_split(y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
  """Stratified fixed split of indices: (train_idx, eval_idx), ``fraction`` of each class held out.

  Fixed (its own seed, not the run's) so that every run and every cell is evaluated on the same
  images.
  """
  rng = np.random.default_rng(20201)
  train, held = [], []
  for cls in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == cls))
    k = int(round(fraction * len(idx)))
    held.append(idx[:k])
    train.append(idx[k:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def load_split(c: ml_collections.ConfigDict) -> Split:
  """The training and evaluation images of a config (official train/test, a user's folder or
  .npz with its test or val split, or the bundled sample split), at the config's image size and
  channels, with their DataSpec (statistics computed from the training part where the config
  gives none and they are not NAS-Bench-201's)."""
  if c.dataset in data.USER_DATASETS:
    u = data.read_config_images(c)
    return Split(u.x_train, u.y_train, u.x_test, u.y_test, u.source, u.record["test_split"],
                 u.spec, u.record)
  if c.data_dir is None:
    u = data.read_config_images(c)
    x, y = u.x_train, u.y_train
    tr, ev = holdout_split(y, float(c.train.holdout_fraction))
    source = u.source + (f"; train on {len(tr)}, evaluate on the other {len(ev)} (held out, "
                         "stratified)")
    spec, record = u.spec, dict(u.record)
    if record["norm_stats"].startswith("computed"):  # from the training part only
      mean, std = data.channel_stats(x[tr])
      spec = dataclasses.replace(spec, mean=mean, std=std)
      record.update(norm_mean=list(mean), norm_std=list(std),
                    norm_stats=f"computed from the {len(tr)} training images")
    record["class_counts"] = {"train": np.bincount(y[tr], minlength=spec.num_classes).tolist(),
                              "held-out": np.bincount(y[ev], minlength=spec.num_classes).tolist()}
    return Split(x[tr], y[tr], x[ev], y[ev], source, "held-out", spec, record)
  tr = data.read_config_images(c, "train")
  te = data.read_config_images(c, "test")
  record = dict(tr.record)
  record["class_counts"] = {"train": tr.record["class_counts"]["train"],
                            "test": te.record["class_counts"]["train"]}
  return Split(tr.x_train, tr.y_train, te.x_train, te.y_train,
               f"{tr.source}; evaluate on {te.source}", "test", tr.spec, record)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  """The shuffle of epoch ``epoch``: a permutation of range(n), pure in (seed, epoch)."""
  return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


# ----------------------------------------------------------------------------- model and step

@flax.struct.dataclass
class TrainState:
  """Everything that changes during training. A pytree, so a jitted step maps it to the next.

  Attributes:
    step: () int32, steps taken.
    params: Flax ``params`` collection of the network.
    batch_stats: BatchNorm running means and variances.
    opt_state: optax state of ``make_optimizer``.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def make_network(c: ml_collections.ConfigDict, arch) -> models.Network:
  """The standalone network of one cell for the config's dataset (its classes; C and N of
  ``c.train``)."""
  a = space.to_arch(arch)
  return models.Network(c.train.channels, c.train.cells_per_stage,
                        data.config_spec(c).num_classes, ops_per_edge=a.ops)


def make_optimizer(c: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """SGD (Nesterov), L2 weight decay added to the gradient (as PyTorch does), cosine decay to 0."""
  t = c.train
  schedule = optax.cosine_decay_schedule(float(t.learning_rate), max(total_steps, 1), alpha=0.0)
  return optax.chain(optax.add_decayed_weights(float(t.weight_decay)),
                     optax.sgd(schedule, momentum=float(t.momentum), nesterov=bool(t.nesterov)))


def make_init(c: ml_collections.ConfigDict, net: nn.Module, tx: optax.GradientTransformation
              ) -> Callable[[jax.Array], TrainState]:
  """Jitted ``key -> TrainState``: fresh parameters (``train.init`` scheme), BatchNorm
  statistics and optimizer state. One program: op by op, the hundreds of small initialisers
  would each compile."""
  spec = data.config_spec(c)
  s = spec.image_size
  scheme = c.train.init

  def init(key):
    variables = net.init(jax.random.key(0), jnp.zeros((1, s, s, spec.channels), jnp.float32),
                         train=False)
    params = models.initialize(key, variables["params"], scheme)
    return TrainState(jnp.zeros((), jnp.int32), params, variables["batch_stats"], tx.init(params))

  return jax.jit(init)


def init_state(c: ml_collections.ConfigDict, net: nn.Module, tx: optax.GradientTransformation,
               key: jax.Array) -> TrainState:
  """Fresh parameters (``train.init`` scheme), BatchNorm statistics and optimizer state."""
  return make_init(c, net, tx)(key)


def make_train_step(net: nn.Module, tx: optax.GradientTransformation,
                    dataset: "str | data.DataSpec", augment: bool) -> Callable:
  """Jitted ``(state, images, labels, idx, key) -> (state, metrics)``.

  Args (of the returned function):
    state: TrainState.
    images: uint8 (n, s, s, c), the whole training set, already on the device (gathering the
      batch inside the step avoids a host-to-device copy per step).
    labels: int32 (n,).
    idx: int32 (batch,), the batch's indices into images.
    key: PRNG key of this step's augmentation.

  Returns the next state and ``{"loss": mean cross-entropy (nats), "accuracy": fraction}`` of the
  batch, before the update.
  """

  def step(state: TrainState, images, labels, idx, key):
    x, y = images[idx], labels[idx]
    if augment:
      x = data.augment(key, x, dataset)
    x = data.normalize(x, dataset)

    def loss_fn(params):
      logits, new = net.apply({"params": params, "batch_stats": state.batch_stats}, x,
                              train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, (new["batch_stats"], logits)

    (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    acc = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
    return (TrainState(state.step + 1, params, batch_stats, opt_state),
            {"loss": loss, "accuracy": acc})

  # Donating the state lets XLA update it in place; the CPU backend ignores donation (and warns).
  donate = (0,) if jax.default_backend() != "cpu" else ()
  return jax.jit(step, donate_argnums=donate)


def make_eval_step(net: nn.Module, dataset: "str | data.DataSpec") -> Callable:
  """Jitted ``(params, batch_stats, images, labels, idx, valid) -> (loss_sum, correct_sum)``.

  ``idx`` int32 (b,) indexes images; ``valid`` float32 (b,) is 0 for padding in the last batch,
  so one compiled shape serves every batch.
  """

  def step(params, batch_stats, images, labels, idx, valid):
    x = data.normalize(images[idx], dataset)
    logits = net.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
    y = labels[idx]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
    return jnp.sum(loss * valid), jnp.sum(correct * valid)

  return jax.jit(step)


def evaluate(eval_step: Callable, state: TrainState, images, labels, batch_size: int
             ) -> dict[str, float]:
  """Mean loss (nats) and accuracy (%) over all of images (device arrays), in fixed batches."""
  n = int(labels.shape[0])
  b = min(batch_size, n)
  loss = correct = 0.0
  for start in range(0, n, b):
    idx = np.arange(start, start + b)
    valid = (idx < n).astype(np.float32)
    l, k = eval_step(state.params, state.batch_stats, images, labels,
                     np.minimum(idx, n - 1).astype(np.int32), valid)
    loss += float(l)
    correct += float(k)
  return {"loss": loss / n, "accuracy": 100.0 * correct / n}


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str, state: TrainState, meta: dict) -> None:
  """The state's leaves (in tree order) and ``meta`` in one atomically written .npz."""
  leaves = jax.tree_util.tree_leaves(jax.device_get(state))
  io.write_arrays_atomic(path, {f"leaf{i:05d}": np.asarray(v) for i, v in enumerate(leaves)},
                         meta)


CHECKPOINT_FILE = f"a training checkpoint ({CHECKPOINT} of experiments.train)"
_CHECKPOINT_META = ("config_hash", "arch_str", "dataset", "channels", "cells_per_stage", "step",
                    "history", "epoch_sums", "seconds")


def read_checkpoint(path: str) -> tuple[dict, dict]:
  """(name -> array, meta) of a checkpoint file; never unpickles.

  Raises FileNotFoundError for a missing file and a one-line ValueError naming ``path`` for a
  damaged or foreign one (not an .npz of ``save_checkpoint``, or metadata without its fields).
  """
  arrays, meta = io.read_arrays(path, CHECKPOINT_FILE)
  missing = [k for k in _CHECKPOINT_META if k not in meta]
  if missing:
    raise io.refuse(path, CHECKPOINT_FILE, f"its metadata lacks {', '.join(missing)}")
  return arrays, meta


def load_checkpoint(path: str, template: TrainState) -> tuple[TrainState, dict]:
  """Restores a state with ``template``'s tree structure; checks every leaf's shape and dtype."""
  arrays, meta = read_checkpoint(path)
  leaves, treedef = jax.tree_util.tree_flatten(template)
  if len(arrays) != len(leaves):
    raise ValueError(f"{path}: {len(arrays)} arrays, the network's state has {len(leaves)}")
  out = []
  for i, ref in enumerate(leaves):
    v = arrays[f"leaf{i:05d}"]
    if v.shape != ref.shape or v.dtype != ref.dtype:
      raise ValueError(f"{path}: leaf {i} is {v.dtype}{v.shape}, expected {ref.dtype}{ref.shape}")
    out.append(jnp.asarray(v))
  return jax.tree_util.tree_unflatten(treedef, out), meta


DATA_FIELDS = ("dataset", "data_dir", "image_size", "image_channels", "norm_mean", "norm_std",
               "num_classes")


def data_meta(c: ml_collections.ConfigDict) -> dict:
  """The data fields of a (resolved) config, for a checkpoint: what export needs to rebuild the
  network's input (size, channels, classes) and normalisation."""
  return {f: (list(c[f]) if isinstance(c[f], tuple) else c[f]) for f in DATA_FIELDS if f in c}


def config_from_meta(meta: dict) -> ml_collections.ConfigDict:
  """The training config of a checkpoint's network: dataset, data fields (``meta["data"]``,
  absent in checkpoints of earlier versions: NAS-Bench-201's defaults), C and N."""
  d = meta.get("data") or {"dataset": meta["dataset"]}
  c = default_config(d["dataset"])
  with c.unlocked():
    for f in DATA_FIELDS:
      if f in d and f != "dataset":
        c[f] = tuple(d[f]) if isinstance(d[f], list) else d[f]
    c.train.channels = meta["channels"]
    c.train.cells_per_stage = meta["cells_per_stage"]
  return c


def read_checkpoint_variables(path: str) -> tuple[dict, dict, dict]:
  """(params, batch_stats, meta) of a training checkpoint, for export; no optimizer needed.

  The network is rebuilt from the arch and sizes in ``meta``; the optimizer state's leaves come
  after the params and batch statistics in tree order and are ignored.
  """
  _, meta = read_checkpoint(path)
  c = config_from_meta(meta)
  tx = make_optimizer(c, 1)
  net = make_network(c, meta["arch_str"])
  template = jax.eval_shape(lambda: init_state(c, net, tx, jax.random.key(0)))
  template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template)
  state, meta = load_checkpoint(path, template)
  return jax.device_get(state.params), jax.device_get(state.batch_stats), meta


# ----------------------------------------------------------------------------- the loop

def _plot(path: str, history: list[dict]) -> None:
  """Loss and accuracy per epoch (train and evaluation), as a PNG written atomically."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  ep = [h["epoch"] for h in history]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
  a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
  a1.plot(ep, [h["eval_loss"] for h in history], "s-", label="eval")
  a1.set_xlabel("epoch")
  a1.set_ylabel("cross-entropy (nats)")
  a1.legend()
  a2.plot(ep, [h["train_accuracy"] for h in history], "o-", label="train")
  a2.plot(ep, [h["eval_accuracy"] for h in history], "s-", label="eval")
  a2.set_xlabel("epoch")
  a2.set_ylabel("accuracy (%)")
  a2.legend()
  fig.tight_layout()
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, path)


def _write_metrics(path: str, history: list[dict]) -> None:
  """metrics.jsonl, one line per finished epoch, rewritten atomically from the checkpoint's list."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    for h in history:
      f.write(json.dumps(h) + "\n")
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


class _Bar:
  """tqdm bar over the steps of one epoch on stderr; silent when quiet."""

  def __init__(self, quiet: bool, total: int, initial: int, desc: str):
    self.bar = None
    if not quiet:
      import tqdm
      self.bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit="step", leave=False,
                           file=sys.stderr)

  def update(self, loss: float, acc: float):
    if self.bar is not None:
      self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * acc:.1f}%", refresh=False)
      self.bar.update(1)

  def close(self):
    if self.bar is not None:
      self.bar.close()


_COMPILED: dict = {}


def _compiled(c: ml_collections.ConfigDict, a: space.Arch, total_steps: int):
  """Network, optimizer and jitted steps of a run, shared by runs of the same config hash in one
  process (a continued run, a test's restarts) so that they compile once."""
  key = (config_hash(c, a), total_steps)
  if key not in _COMPILED:
    net = make_network(c, a)
    tx = make_optimizer(c, total_steps)
    if len(_COMPILED) >= 4:
      _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = (net, tx, make_init(c, net, tx),
                      make_train_step(net, tx, data.config_spec(c), bool(c.train.augment)),
                      make_eval_step(net, data.config_spec(c)))
  return _COMPILED[key]


def train_and_evaluate(c: ml_collections.ConfigDict, arch, workdir: str, split: Split,
                       echo: Callable[[str], None] = print, quiet: bool = False
                       ) -> Optional[dict]:
  """Trains (or continues training) the network of ``arch``; evaluates after every epoch.

  Writes into ``workdir``: ``checkpoint.npz`` (after every epoch, and every
  ``train.checkpoint_every_steps`` steps), ``metrics.jsonl`` and ``metrics.png`` (per epoch) and,
  once all epochs are done, ``result.json``. A workdir with a checkpoint of the same config and
  cell is continued; one of another config fails.

  Returns the result record, or None when ``train.max_steps`` stopped the run first.
  """
  validate_config(c)
  if split.spec is not None:  # classes and statistics of the images, hashed and recorded
    c = data.resolve_config(c, split.spec)
  a = space.to_arch(arch)
  t = c.train
  n_train = len(split.y_train)
  steps_per_epoch = n_train // t.batch_size
  if steps_per_epoch < 1:
    raise ValueError(f"config.train.batch_size = {t.batch_size} is not allowed: at most the "
                     f"{n_train} training images")
  total_steps = t.epochs * steps_per_epoch
  chash = config_hash(c, a)
  ckpt_path = os.path.join(workdir, CHECKPOINT)
  resume = os.path.exists(ckpt_path)
  if resume:  # refuse a foreign checkpoint before compiling anything
    _, meta = read_checkpoint(ckpt_path)
    if meta.get("config_hash") != chash:
      raise ValueError(f"{ckpt_path} belongs to another run (cell {meta.get('arch_str')}, config "
                       f"hash {meta.get('config_hash')} != {chash}); use another --workdir")
  os.makedirs(workdir, exist_ok=True)
  net, tx, init, train_step, eval_step = _compiled(c, a, total_steps)

  root = jax.random.key(c.seed)
  k_init, k_aug = jax.random.split(root)
  if resume:
    # The template's shapes only: evaluating the initialiser would be wasted work.
    template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                      jax.eval_shape(init, k_init))
    state, meta = load_checkpoint(ckpt_path, template)
    echo(f"resuming from {ckpt_path} at step {int(state.step)} of {total_steps}")
  else:
    state = init(k_init)
    meta = {"history": [], "epoch_sums": [0.0, 0.0, 0], "seconds": 0.0}
  history = list(meta["history"])
  # Running sums of the current epoch's train loss and accuracy (float64, in step order) and
  # their step count: checkpointed mid-epoch so a restart reports the same epoch means.
  loss_sum, acc_sum, n_sum = meta["epoch_sums"]
  elapsed = float(meta["seconds"])

  x_tr, y_tr = jax.device_put(split.x_train), jax.device_put(split.y_train)
  x_ev, y_ev = jax.device_put(split.x_eval), jax.device_put(split.y_eval)

  def checkpoint():
    save_checkpoint(ckpt_path, state, {
        "config_hash": chash, "arch_str": a.to_string(), "dataset": c.dataset,
        "channels": t.channels, "cells_per_stage": t.cells_per_stage,
        "step": int(state.step), "steps_per_epoch": steps_per_epoch, "history": history,
        "epoch_sums": [loss_sum, acc_sum, n_sum], "seconds": elapsed,
        "data": data_meta(c),
        "layout": "NHWC float32 input, normalised with data.MEAN/STD"})

  step_times = []  # seconds of each step of this process
  step = int(state.step)
  limit = min(total_steps, t.max_steps) if t.max_steps else total_steps
  while step < limit:
    epoch, pos = divmod(step, steps_per_epoch)
    order = epoch_order(c.seed, epoch, n_train)
    bar = _Bar(quiet, steps_per_epoch, pos, f"epoch {epoch + 1}/{t.epochs}")
    t_epoch = time.perf_counter()
    try:
      while pos < steps_per_epoch and step < limit:
        t0 = time.perf_counter()
        idx = order[pos * t.batch_size:(pos + 1) * t.batch_size]
        state, m = train_step(state, x_tr, y_tr, idx, jax.random.fold_in(k_aug, step))
        loss, acc = float(m["loss"]), float(m["accuracy"])  # also waits for the step
        dt = time.perf_counter() - t0
        # The first step of a process includes compilation: kept apart from the steady time.
        step_times.append(dt)
        loss_sum, acc_sum, n_sum = loss_sum + loss, acc_sum + acc, n_sum + 1
        step, pos = step + 1, pos + 1
        bar.update(loss, acc)
        if not math.isfinite(loss):
          raise FloatingPointError(f"training diverged: loss {loss} at step {step}")
        if t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0 and pos < steps_per_epoch:
          elapsed += time.perf_counter() - t_epoch
          t_epoch = time.perf_counter()
          checkpoint()
    finally:
      bar.close()
    elapsed += time.perf_counter() - t_epoch
    if pos < steps_per_epoch:  # stopped by max_steps inside an epoch
      checkpoint()
      echo(f"stopped at step {step} (train.max_steps = {t.max_steps}); checkpoint written")
      return None
    t_eval = time.perf_counter()
    ev = evaluate(eval_step, state, x_ev, y_ev, t.eval_batch_size)
    eval_s = time.perf_counter() - t_eval
    elapsed += eval_s
    rec = {"epoch": epoch + 1, "step": step, "lr": float(tx_lr(c, total_steps, step)),
           "train_loss": loss_sum / n_sum, "train_accuracy": 100.0 * acc_sum / n_sum,
           "eval_loss": ev["loss"], "eval_accuracy": ev["accuracy"], "eval_split": split.eval_name,
           "elapsed_seconds": elapsed, "eval_seconds": eval_s}
    history.append(rec)
    loss_sum, acc_sum, n_sum = 0.0, 0.0, 0
    checkpoint()
    _write_metrics(os.path.join(workdir, METRICS), history)
    _plot(os.path.join(workdir, PLOT), history)
    echo(f"epoch {epoch + 1}/{t.epochs}: train loss {rec['train_loss']:.4f} acc "
         f"{rec['train_accuracy']:.2f}%  {split.eval_name} loss {rec['eval_loss']:.4f} acc "
         f"{rec['eval_accuracy']:.2f}%  ({elapsed:.1f} s so far)")
    if t.max_steps and step >= t.max_steps and step < total_steps:
      echo(f"stopped at step {step} (train.max_steps = {t.max_steps}); checkpoint written")
      return None

  steady = step_times[1:]
  gt = benchmark.lookup(a)
  from monas_jax.describe import ground_truth_unavailable
  no_gt = ground_truth_unavailable(data.config_spec(c), t.channels, t.cells_per_stage)
  truth = ({"nb201_test_acc": {k: gt[f"{k}_test_acc"] for k in data.DATASETS}} if no_gt is None
           else {"ground_truth": no_gt})
  ends = [0.0] + [h["elapsed_seconds"] for h in history]
  per_epoch = [e1 - e0 for e0, e1 in zip(ends[:-1], ends[1:])]
  result = {
      "arch_str": a.to_string(), "nb201_index": gt["nb201_index"], **truth,
      "final_eval_accuracy": history[-1]["eval_accuracy"], "eval_split": split.eval_name,
      "best_eval_accuracy": max(h["eval_accuracy"] for h in history),
      "final_eval_loss": history[-1]["eval_loss"],
      "epochs": t.epochs, "steps": step, "steps_per_epoch": steps_per_epoch,
      "num_train": n_train, "num_eval": int(len(split.y_eval)),
      "seconds_per_epoch": float(np.mean(per_epoch)), "seconds_per_epoch_each": per_epoch,
      "seconds_per_step": float(np.median(steady)) if steady else None,
      "first_step_seconds": step_times[0] if step_times else None,
      "seconds_total": elapsed,
      "checkpoint": ckpt_path, "data_source": split.source, "data": split.record,
      "seed": c.seed,
      **io.environment(), "config": json.loads(c.to_json()), "config_hash": chash,
  }
  io.write_json_atomic(os.path.join(workdir, RESULT), result)
  return result


def tx_lr(c: ml_collections.ConfigDict, total_steps: int, step: int) -> float:
  """Learning rate the schedule gives at ``step`` (for the metrics record)."""
  return float(optax.cosine_decay_schedule(float(c.train.learning_rate), max(total_steps, 1))(step))
