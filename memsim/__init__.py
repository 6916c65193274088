"""memsim: replay allocation and memory-access traces through the Go allocator and a cache hierarchy."""

from memsim.numba_cache import ensure_cache_dir

__version__ = "0.1.0"

ensure_cache_dir()  # every jitted module is cached; decide where before any of them imports Numba
