"""Assets per layer: bronze (observed), silver (cleaned), gold (SQL models, notebooks, Python)."""
