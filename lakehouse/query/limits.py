"""Hard memory limits of query workers, beyond DuckDB's own `memory_limit`.

DuckDB's limit governs its buffer manager, not every allocation: `SELECT len(range(1e9))` took a
worker with a 2 GB limit to 6.3 GB. So a worker has a resident-memory ceiling, watched by the
engine from outside (it kills the worker past it), and a data-segment limit it sets on itself
so that one huge allocation fails at once with an error instead of a kill.
"""

import os
import re
import resource

from lakehouse.settings import Settings

MB = 2**20
# What the data segment may grow by beyond the resident ceiling: allocators reserve more than
# they touch (a GROUP BY grows the segment by more than its own size; each thread adds stack
# and arena space).
DATA_HEADROOM_MB = 512
DATA_PER_THREAD_MB = 32
_MEMORY = re.compile(r"([\d.]+)\s*([kmgt]?)(i?)b?", re.I)


def memory_ceiling_mb(settings: Settings) -> int:
    """A query worker's resident memory ceiling: the setting, or 2 × DuckDB's limit + 512 MB
    (DuckDB's limit covers its buffers, not huge strings and lists or the Arrow result)."""
    if settings.query_worker_max_mb:
        return settings.query_worker_max_mb
    m = _MEMORY.fullmatch(settings.query_memory_limit.strip())
    if m is None:  # e.g. -1 (no limit): bound the worker by the machine instead
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8) // MB
    base = 1024 if m[3] else 1000
    limit = float(m[1]) * base ** " kmgt".index(m[2].lower() or " ")
    return int(2 * limit) // MB + 512


def limit_data_segment(settings: Settings) -> None:
    """Let this process's data segment (RLIMIT_DATA) grow by at most the ceiling and some
    headroom beyond its size now; a query worker calls it on itself once warmed up (an idle
    worker's data segment is already large, mostly an allocator's reservation)."""
    threads = settings.query_threads or settings.duckdb_threads or os.cpu_count() or 1
    growth = memory_ceiling_mb(settings) + DATA_HEADROOM_MB + DATA_PER_THREAD_MB * threads
    cap = _data_segment() + growth * MB
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))


def _data_segment() -> int:
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmData:"):
                return int(line.split()[1]) * 1024
    return 0
