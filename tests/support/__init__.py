"""Helpers the test suites share: lake folders, a throwaway PostgreSQL."""
