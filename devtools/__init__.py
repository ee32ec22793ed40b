"""Package marker: development helpers (the test S3 server, process supervision, free ports)."""
