"""monas-jax: hardware-aware zero-shot NAS for microcontrollers (MONAS), in JAX."""

__version__ = "0.1.0"
