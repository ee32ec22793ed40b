"""From a file to a bronze batch: the landing folder, what the file is, one streaming pass,
conversion to Parquet."""
