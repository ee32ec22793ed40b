"""Notebook steps: a notebook that publishes one gold table becomes a pipeline step
(`promote`), and records what it reads, publishes and checks when it runs as one."""
