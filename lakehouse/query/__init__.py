"""Reading the lake: the statement guard, the sandboxed worker pool, charts and saved queries."""
