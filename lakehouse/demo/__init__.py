"""The demo data: a small retail business (`generate`) and seeding a lake with it (`seed`)."""

from lakehouse.demo.generate import ANCHOR, DATASETS, START, generate
from lakehouse.demo.seed import DEMO_QUERIES, seed, seed_saved_queries

__all__ = ["ANCHOR", "DATASETS", "DEMO_QUERIES", "START", "generate", "seed", "seed_saved_queries"]
