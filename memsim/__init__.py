"""memsim: replay allocation and memory-access traces through the Go allocator and a cache hierarchy."""

__version__ = "0.1.0"
