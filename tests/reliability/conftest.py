"""Reliability suites: what each tried and what held goes into the report (tests/report.py).

Sizes come from the environment so one suite serves CI (short) and `make reliability` (full).
"""

from tests.report import ROOT, Record, load_seconds

__all__ = ["ROOT", "Record", "load_seconds"]
