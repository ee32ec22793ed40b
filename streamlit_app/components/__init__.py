"""Reusable widgets for the app's pages; pure helpers here are tested without a browser."""
