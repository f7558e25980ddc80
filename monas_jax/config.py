"""Default configuration of a MONAS run and its validation.

``configs/<dataset>.py`` call ``make_config``; entry points call ``validate`` after command-line
overrides, so a bad value fails before any compute with a message naming field, value and what
is allowed.
"""
from __future__ import annotations

import ml_collections

from monas_jax import data, space

# NAS-Bench-201's datasets, then 'folder': a user's image folder or .npz (data.load_user_dataset).
DATASETS = data.DATASETS + data.USER_DATASETS
VARIANTS = ("", "smoke")
INDICATORS = ("ntk", "regions", "flops", "latency")


def make_config(dataset: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """Defaults of METHOD.md (paper choices; reference-code choices are options).

  Args:
    dataset: one of DATASETS ('folder': a user's images, given by ``data_dir``).
    arg: variant after ':' in ``--config=configs/x.py:arg``; '' (default) or 'smoke' (tiny,
      for tests).
  """
  arg = arg or ""
  # dataset, data_dir (None: the bundled sample images; for 'folder' the image folder or the
  # .npz), image_size (None: the dataset's own), image_channels, norm_mean/norm_std (None:
  # NAS-Bench-201's, or computed from the training split), num_classes (from the data), seed.
  c = data.command_config(dataset)
  if arg not in VARIANTS:
    raise ValueError(f"config variant must be one of {VARIANTS}, got {arg!r}")

  # The network that will be deployed: channels C of the first stage and cells N per stage. The
  # search's hardware terms (FLOPs, latency, memory budget) and the cell's record are for it;
  # experiments.train and experiments.export build it. NAS-Bench-201's is C=16, N=5.
  c.network = ml_collections.ConfigDict()
  c.network.channels = 16
  c.network.cells_per_stage = 5

  # NTK network: the supernet at small width (reference code: C=3, N=1).
  c.ntk = ml_collections.ConfigDict()
  c.ntk.channels = 3
  c.ntk.cells_per_stage = 1
  c.ntk.batch_size = 32  # paper; reference code 72 (TE-NAS) or 128 (MONAS variant)
  c.ntk.cond_index = 2  # K_i = lambda_1 / lambda_(n-i): paper K_2, reference K_0
  c.ntk.init = "kaiming"  # 'kaiming' (TE-NAS intent, fan-out) or 'torch_default' (released code)
  c.ntk.params = "weights"  # 'weights' (conv kernels, BN scales, classifier matrix) or 'all'
  c.ntk.eig_dtype = "float32"  # or 'float64'
  # Masks per vmapped evaluation; 0 = auto (1 on CPU; on accelerators as many as half the free
  # device memory holds, from the compiled function's memory analysis, at most 64 per device).
  c.ntk.chunk_size = 0

  # Linear-region network: one width-1 cell on random 3x3 single-channel crops.
  c.regions = ml_collections.ConfigDict()
  c.regions.channels = 1
  c.regions.num_batches = 3
  c.regions.num_samples = 1000
  c.regions.crop = 3
  c.regions.init = "kaiming"  # fan-in for this network

  # Zero-cost proxies (monas_jax/proxies/zero_cost.py) on the benchmark network (C=16, N=5).
  c.zc = ml_collections.ConfigDict()
  c.zc.channels = 16
  c.zc.cells_per_stage = 5
  c.zc.batch_size = 64  # AZ-NAS; NASWOT's paper uses 128; NASLib's stored NB201 values 32

  c.search = ml_collections.ConfigDict()
  # 'monas': the paper's K, R, F, L weighted mean of ranks; 'ensemble': the composition below.
  c.search.mode = "monas"
  c.search.repeats = 3
  c.search.precision = 3
  c.search.flops_weight = 0.0  # lambda
  c.search.latency_weight = 0.0  # mu
  c.search.prune_per_round = 1
  c.search.exclude_ops = ("none",)
  c.search.latency_budget_ms = ml_collections.FieldReference(None, field_type=float)
  c.search.enforce_memory = False  # keep the cell within the MCU profile's SRAM and flash
  c.search.memory_dtype = "int8"
  # How enforce_memory counts flash and SRAM (hardware.memory.MODELS): 'tflm', the int8 .tflite
  # and the TFLM arena as `experiments.export --format=tflite` measures them (64-bit host build:
  # conservative for a Cortex-M); 'tflm_cortex_m', a 32-bit build's arena (predicted); 'onnx', the
  # exported ONNX graph's weights and activation peak (no runtime's overhead).
  c.search.memory_model = "tflm"

  # The composed zero-cost score of search.mode = 'ensemble' (and of score_space's report).
  c.ensemble = ml_collections.ConfigDict()
  # AZ-NAS's trainability and FLOPs with synflow and MeCo. Chosen among all 63 subsets of
  # E, P, T, synflow, MeCo and FLOPs on half of a 1,000-cell sample by what a search returns
  # (the CIFAR-10 valid accuracy of the best-scored cell of random pools of 64 and 256 cells),
  # and better than the earlier five (with expressivity) on the other half for all three
  # datasets' test accuracy; expressivity ranks the best cells (skip on edge 3<-0) low. Its
  # Kendall tau over all cells is lower (benchmarks/RESULTS.md, "Top end").
  c.ensemble.indicators = ("trainability", "flops", "synflow", "meco")
  c.ensemble.weights = (1.0, 1.0, 1.0, 1.0)
  c.ensemble.rule = "log_rank"  # 'log_rank' (AZ-NAS) or 'mean_rank' (MONAS Eq. 3)
  c.ensemble.repeats = 1  # draws of data and weights per evaluation (AZ-NAS: one)
  # Once at most this many single-path cells remain, score each one directly and keep the best.
  c.ensemble.final_cells = 64
  # Then steps of local search from the best cell over its one-edge neighbours (0 = none).
  c.ensemble.refine_steps = 3
  # Operators the local search may put on an edge: 'search' (those search.exclude_ops allows),
  # 'all' (also the excluded ones: it can bring back `none`, which the fastest good cells use,
  # while the supernet rounds still run without it) or 'auto' ('all' when mu > 0, 'search'
  # otherwise). 'all' moved the mu 0.5-0.8 sweep's cells onto the accuracy-latency front; with a
  # latency budget alone it changed nothing on average (mean gap 1.12 against 1.10), and without
  # a latency objective `none` only lowers the zero-cost scores (benchmarks/RESULTS.md).
  c.ensemble.refine_ops = "auto"
  # With a latency/memory budget, prune rounds also rank each candidate by how many of its cells
  # meet the budget, with this weight (the zero-cost indicators share 1 - lambda - mu). Without
  # it a tight budget lets the supernet rounds prune skip on every edge (the indicators reward
  # convolutions in supernets), leaving only all-1x1 cells within 15 ms. 0.5 was chosen from the
  # round-2 tables of seed 0 on CIFAR-10 (benchmarks/RESULTS.md); 0 turns it off.
  c.ensemble.budget_weight = 0.5
  # How the search uses the score: 'cells' compares single cells from the first round (prune
  # rounds draw cells_per_round new cells inside the supernet and prune, on every edge, the
  # operator whose best cells (top_fraction of them) score lowest); 'supernet' scores
  # candidate supernets in the prune rounds (the earlier search). Details:
  # monas_jax/search/ensemble.py.
  c.ensemble.strategy = "cells"
  c.ensemble.cells_per_round = 32
  c.ensemble.top_fraction = 0.25
  # Opt-in last step of strategy 'cells' (0 = off): the final round's rerank_top best cells are
  # also scored with rerank_indicators, and the accuracy composition plus those (weight 1 each)
  # is recomposed inside them (then Eq. 3 as everywhere) to pick the cell. VKDNW's Fisher
  # entropy orders the CIFAR-10 sample searches' best cells, but on held-out random pools it
  # does not raise the pick's CIFAR-100 accuracy at any k, and at C=16, N=5 it costs about 70 s
  # a cell on a 2-core CPU with 10 classes and 500 s with 100 (benchmarks/RESULTS.md, "A final
  # re-rank by VKDNW's entropy" and "Choosing k on held-out cells"), hence off by default.
  c.ensemble.rerank_top = 0
  c.ensemble.rerank_indicators = ("vkdnw_entropy",)
  # Strategy 'cells' with a latency or memory budget: 'auto' starts from every operator, `none`
  # included, and lets the prune rounds decide per edge; 'search' keeps search.exclude_ops.
  c.ensemble.budget_ops = "auto"

  c.hardware = ml_collections.ConfigDict()
  c.hardware.profile = "stm32f746"

  # Scoring the space (experiments/score_space.py).
  c.num_cells = 1000  # 0 = all 15,625
  c.shard_index = 0
  c.num_shards = 1
  c.score = ml_collections.ConfigDict()
  # Cells of the NTK batch-size sweep (a subset of the sample); 0 = none. Off unless asked:
  # it costs about 25 minutes for 100 cells on 2 CPU cores.
  c.score.sweep_cells = 0
  c.score.ntk = True  # NTK spectra and linear regions (the MONAS indicators) per cell
  # Zero-cost proxies scored on every cell of the sample, and costlier ones on the first
  # extra_cells cells only (names from monas_jax.proxies.zero_cost.PROXIES).
  c.score.proxies = ("expressivity", "progressivity", "trainability", "synflow", "meco")
  c.score.extra_proxies = ("naswot", "grad_norm", "snip", "jacov", "zico")
  c.score.extra_cells = 200
  c.score.batch_sizes = (8, 16, 32, 64, 128)
  c.score.max_cond_index = 8  # the K_i sweep reports i = 0..max_cond_index

  # How the process runs (not what it computes; not part of a search's config hash). Applied by
  # the commands' experiments.cli.setup_runtime.
  c.runtime = ml_collections.ConfigDict()
  # Persistent XLA compilation cache: a second run of the same config skips compiling. None =
  # $MONAS_JAX_COMPILATION_CACHE if set ('off' disables), else
  # $XDG_CACHE_HOME/monas_jax/jax_cache (~/.cache/monas_jax/jax_cache).
  c.runtime.compilation_cache = True
  c.runtime.compilation_cache_dir = ml_collections.FieldReference(None, field_type=str)
  # Multi-host: jax.distributed.initialize() before any compute. With the three fields None it
  # auto-detects (Cloud TPU pods, Slurm, Open MPI, Kubernetes); otherwise all three are given.
  c.runtime.distributed = False
  c.runtime.coordinator_address = ml_collections.FieldReference(None, field_type=str)  # host:port
  c.runtime.num_processes = ml_collections.FieldReference(None, field_type=int)
  c.runtime.process_id = ml_collections.FieldReference(None, field_type=int)

  if arg == "smoke":
    c.ntk.batch_size = 8
    c.regions.num_batches = 1
    c.regions.num_samples = 200
    c.search.repeats = 1
    c.num_cells = 8
    c.zc.channels = 4
    c.zc.cells_per_stage = 1
    c.zc.batch_size = 8
    c.score.sweep_cells = 4
    c.score.extra_cells = 2
    c.score.batch_sizes = (4, 8)
    c.score.max_cond_index = 3
  c.lock()
  return c


def _fail(field: str, value, allowed: str):
  raise ValueError(f"config.{field} = {value!r} is not allowed: {allowed}")


def _check_network(c, section: str) -> None:
  """channels, cells_per_stage and batch_size of a network section: positive, batch >= 2."""
  for f in ("channels", "cells_per_stage", "batch_size"):
    v = c[section][f]
    if not isinstance(v, int) or v < 1:
      _fail(f"{section}.{f}", v, "a positive integer")
  if c[section].batch_size < 2:
    _fail(f"{section}.batch_size", c[section].batch_size, "at least 2")


def validate(c: ml_collections.ConfigDict, needs_images: bool = True) -> ml_collections.ConfigDict:
  """Raises ValueError naming the first bad field; returns the config unchanged.

  ``needs_images=False`` for commands that read no images (describe): then ImageNet16-120, of
  which no sample is bundled, needs no ``data_dir``.
  """
  data.check_config_fields(c)
  if needs_images and c.data_dir is None and c.dataset == "imagenet16_120":
    _fail("data_dir", None, "a directory with Imagenet16_train/ (no ImageNet16-120 sample is bundled)")
  if not isinstance(c.seed, int) or c.seed < 0:
    _fail("seed", c.seed, "a non-negative integer")
  if not isinstance(c.ntk.chunk_size, int) or c.ntk.chunk_size < 0:
    _fail("ntk.chunk_size", c.ntk.chunk_size, "a non-negative integer (0 = auto)")
  _check_network(c, "ntk")
  if not isinstance(c.ntk.cond_index, int) or not 0 <= c.ntk.cond_index < c.ntk.batch_size - 1:
    _fail("ntk.cond_index", c.ntk.cond_index, f"an integer in [0, ntk.batch_size - 1 = "
          f"{c.ntk.batch_size - 1})")
  if c.ntk.init not in ("kaiming", "torch_default"):
    _fail("ntk.init", c.ntk.init, "'kaiming' or 'torch_default'")
  if c.ntk.params not in ("weights", "all"):
    _fail("ntk.params", c.ntk.params, "'weights' or 'all'")
  if c.ntk.eig_dtype not in ("float32", "float64"):
    _fail("ntk.eig_dtype", c.ntk.eig_dtype, "'float32' or 'float64'")
  for f in ("channels", "num_batches", "num_samples", "crop"):
    v = c.regions[f]
    if not isinstance(v, int) or v < 1:
      _fail(f"regions.{f}", v, "a positive integer")
  if c.regions.channels != 1:
    # The inputs are single-channel patches (TE-NAS's RandChannel(1)) fed straight into the cell,
    # whose skip and pooling edges keep the input width: any other width cannot add up.
    _fail("regions.channels", c.regions.channels, "1 (the linear-region inputs are "
          "single-channel crops, as in TE-NAS)")
  if c.regions.crop > data.image_size_of(c):
    _fail("regions.crop", c.regions.crop, f"at most config.image_size = {data.image_size_of(c)} "
          "(the image side)")
  for f in ("channels", "cells_per_stage"):
    v = c.network[f]
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
      _fail(f"network.{f}", v, "a positive integer")
  if c.regions.init not in ("kaiming", "torch_default"):
    _fail("regions.init", c.regions.init, "'kaiming' or 'torch_default'")
  s = c.search
  if s.mode not in ("monas", "ensemble"):
    _fail("search.mode", s.mode, "'monas' or 'ensemble'")
  e = c.ensemble
  from monas_jax.proxies import zero_cost as _zc  # late: imports the models
  if "latency" in e.indicators:
    _fail("ensemble.indicators", tuple(e.indicators), "zero-cost proxies only: latency weighs "
          "against the composed accuracy score through search.latency_weight (mu)")
  bad = [n for n in e.indicators if n not in _zc.PROXIES]
  if bad or not e.indicators:
    _fail("ensemble.indicators", tuple(e.indicators), f"a non-empty subset of {_zc.PROXIES}")
  if len(e.weights) != len(e.indicators) or any(float(w) < 0 for w in e.weights):
    _fail("ensemble.weights", tuple(e.weights), f"{len(e.indicators)} non-negative numbers, one per "
          "ensemble indicator")
  if e.rule not in ("log_rank", "mean_rank"):
    _fail("ensemble.rule", e.rule, "'log_rank' or 'mean_rank'")
  if not isinstance(e.repeats, int) or e.repeats < 1:
    _fail("ensemble.repeats", e.repeats, "a positive integer")
  if not isinstance(e.final_cells, int) or e.final_cells < 1:
    _fail("ensemble.final_cells", e.final_cells, "a positive integer")
  if not isinstance(e.budget_weight, (int, float)) or e.budget_weight < 0:
    _fail("ensemble.budget_weight", e.budget_weight, "a non-negative number")
  if not isinstance(e.refine_steps, int) or isinstance(e.refine_steps, bool) or e.refine_steps < 0:
    _fail("ensemble.refine_steps", e.refine_steps, "a non-negative integer")
  if e.refine_ops not in ("auto", "search", "all"):
    _fail("ensemble.refine_ops", e.refine_ops, "'auto', 'search' or 'all'")
  if e.strategy not in ("cells", "supernet"):
    _fail("ensemble.strategy", e.strategy, "'cells' or 'supernet'")
  if not isinstance(e.cells_per_round, int) or isinstance(e.cells_per_round, bool) or (
      e.cells_per_round < 1):
    _fail("ensemble.cells_per_round", e.cells_per_round, "a positive integer")
  if e.budget_ops not in ("auto", "search"):
    _fail("ensemble.budget_ops", e.budget_ops, "'auto' or 'search'")
  if not 0.0 < float(e.top_fraction) <= 1.0:
    _fail("ensemble.top_fraction", e.top_fraction, "a number in (0, 1]")
  if not isinstance(e.rerank_top, int) or isinstance(e.rerank_top, bool) or e.rerank_top < 0:
    _fail("ensemble.rerank_top", e.rerank_top, "a non-negative integer (0: no re-rank)")
  bad = [n for n in e.rerank_indicators if n not in _zc.PROXIES or n in e.indicators]
  if e.rerank_top and (bad or not e.rerank_indicators):
    _fail("ensemble.rerank_indicators", tuple(e.rerank_indicators), "a non-empty subset of "
          f"{_zc.PROXIES} not among ensemble.indicators")
  if e.rerank_top and e.strategy != "cells":
    _fail("ensemble.rerank_top", e.rerank_top, "0 unless ensemble.strategy is 'cells'")
  if s.mode == "ensemble" and not any(float(w) > 0 for w in e.weights):
    _fail("ensemble.weights", tuple(e.weights), "at least one positive weight on a zero-cost "
          "indicator")
  if not isinstance(s.repeats, int) or s.repeats < 1:
    _fail("search.repeats", s.repeats, "a positive integer")
  if not isinstance(s.precision, int) or not 0 <= s.precision <= 8:
    _fail("search.precision", s.precision, "an integer in [0, 8]")
  for f in ("flops_weight", "latency_weight"):
    if not 0.0 <= float(s[f]) < 1.0:
      _fail(f"search.{f}", s[f], "a number in [0, 1)")
  if float(s.flops_weight) + float(s.latency_weight) > 1.0:
    _fail("search.flops_weight + search.latency_weight", s.flops_weight + s.latency_weight,
          "at most 1")
  if not isinstance(s.prune_per_round, int) or s.prune_per_round < 1:
    _fail("search.prune_per_round", s.prune_per_round, "a positive integer")
  bad = [o for o in s.exclude_ops if o not in space.OPS]
  if bad:
    _fail("search.exclude_ops", tuple(s.exclude_ops), f"a subset of {space.OPS}")
  if len(set(s.exclude_ops)) >= space.NUM_OPS:
    _fail("search.exclude_ops", tuple(s.exclude_ops), "must leave at least one operator")
  if s.latency_budget_ms is not None and not float(s.latency_budget_ms) > 0:
    _fail("search.latency_budget_ms", s.latency_budget_ms, "a positive number of ms, or None")
  if s.memory_dtype not in ("int8", "float32"):
    _fail("search.memory_dtype", s.memory_dtype, "'int8' or 'float32'")
  from monas_jax.hardware import memory  # late, as latency below
  if s.memory_model not in memory.MODELS:
    _fail("search.memory_model", s.memory_model, f"one of {memory.MODELS}")
  if s.memory_model != "onnx" and s.memory_dtype != "int8":
    _fail("search.memory_model", s.memory_model, "'onnx' when search.memory_dtype is 'float32' "
          "(the TFLite deployment is int8)")
  from monas_jax.hardware import latency  # late: the hardware room imports the cost model
  profiles = latency.builtin_profiles()
  if c.hardware.profile not in profiles and not str(c.hardware.profile).endswith(".json"):
    _fail("hardware.profile", c.hardware.profile, f"one of {profiles} or a path to a .json profile")
  if not isinstance(c.num_cells, int) or not 0 <= c.num_cells <= space.NUM_CELLS:
    _fail("num_cells", c.num_cells, f"an integer in [0, {space.NUM_CELLS}] (0 = all)")
  if not isinstance(c.num_shards, int) or c.num_shards < 1:
    _fail("num_shards", c.num_shards, "a positive integer")
  if not isinstance(c.shard_index, int) or not 0 <= c.shard_index < c.num_shards:
    _fail("shard_index", c.shard_index, f"an integer in [0, num_shards = {c.num_shards})")
  if not isinstance(c.score.sweep_cells, int) or c.score.sweep_cells < 0:
    _fail("score.sweep_cells", c.score.sweep_cells, "a non-negative integer")
  from monas_jax.proxies import zero_cost  # late: imports the models
  for f in ("proxies", "extra_proxies"):
    bad = [n for n in c.score[f] if n not in zero_cost.PROXIES]
    if bad:
      _fail(f"score.{f}", tuple(c.score[f]), f"names from {zero_cost.PROXIES}")
  if not isinstance(c.score.extra_cells, int) or c.score.extra_cells < 0:
    _fail("score.extra_cells", c.score.extra_cells, "a non-negative integer")
  _check_network(c, "zc")
  if not c.score.batch_sizes or any(not isinstance(b, int) or b < 2 for b in c.score.batch_sizes):
    _fail("score.batch_sizes", tuple(c.score.batch_sizes), "integers >= 2")
  if not isinstance(c.score.max_cond_index, int) or not (
      0 <= c.score.max_cond_index < c.ntk.batch_size - 1):
    _fail("score.max_cond_index", c.score.max_cond_index,
          f"an integer in [0, ntk.batch_size - 1 = {c.ntk.batch_size - 1})")
  validate_runtime(c)
  return c


def validate_runtime(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks ``c.runtime`` (compilation cache, multi-host); a config without it passes."""
  if "runtime" not in c:
    return c
  r = c.runtime
  if not isinstance(r.compilation_cache, bool):
    _fail("runtime.compilation_cache", r.compilation_cache, "True or False")
  if r.compilation_cache_dir is not None and not str(r.compilation_cache_dir).strip():
    _fail("runtime.compilation_cache_dir", r.compilation_cache_dir, "a directory, or None (default)")
  if not isinstance(r.distributed, bool):
    _fail("runtime.distributed", r.distributed, "True or False")
  given = {f: r[f] for f in ("coordinator_address", "num_processes", "process_id")
           if r[f] is not None}
  if given and not r.distributed:
    f = next(iter(given))
    _fail(f"runtime.{f}", given[f], "None unless runtime.distributed = True")
  if given and len(given) < 3:
    missing = [f for f in ("coordinator_address", "num_processes", "process_id") if f not in given]
    _fail(f"runtime.{missing[0]}", None, "given together with the other two (coordinator_address, "
          "num_processes, process_id), or all three None to auto-detect")
  if given:
    addr = str(r.coordinator_address)
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
      _fail("runtime.coordinator_address", addr, "'host:port'")
    if not isinstance(r.num_processes, int) or r.num_processes < 1:
      _fail("runtime.num_processes", r.num_processes, "a positive integer")
    if not isinstance(r.process_id, int) or not 0 <= r.process_id < r.num_processes:
      _fail("runtime.process_id", r.process_id,
            f"an integer in [0, runtime.num_processes = {r.num_processes})")
  return c
