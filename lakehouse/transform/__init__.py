"""Bronze to silver (cleaning, checks) and silver to gold (SQL models)."""
