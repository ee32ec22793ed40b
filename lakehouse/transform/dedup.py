"""Silver's deduplication in bounded memory, and the memory it may use.

A first pass counts a 64-bit hash per row (of the whole row, or of its key); only rows whose
hash is not unique (usually none) go through an exact DISTINCT or key comparison, and every
other row streams straight through.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lakehouse.errors import ConfigError
from lakehouse.layers import quote_ident, quote_literal
from lakehouse.settings import Settings
from lakehouse.tables import bronze
from lakehouse.tables.bronze import BatchManifest

# The row hash deduplication groups on: DuckDB's own, the one its GROUP BY and DISTINCT use,
# so rows DISTINCT calls equal (NULLs, NaNs, -0.0 and 0.0, nested values) hash alike.
ROW_HASH = "hash({})"
# A row's place in the dataset as one BIGINT: its batch (commit order) above bit 40, its row
# in the batch's file below (files stay far below 2^40 ≈ 10^12 rows).
_ROW_BITS = 40

# Silver's DuckDB memory at most, whatever `duckdb_memory_limit` allows: deduplication's one
# pass with state needs ~36 bytes a row (2.2 GB for 60M rows) and spills the rest cheaply,
# while the process also holds Python and Dagster. (Figures: benchmarks/README.md, Silver.)
MEMORY_LIMIT = "2GB"
_SIZE = re.compile(r"([\d.]+)\s*([kmgt]?)(i?)b?", re.I)


def memory_limit(settings: Settings) -> str:
    """DuckDB's memory limit for a silver build: the configured one, at most MEMORY_LIMIT."""
    configured = _bytes(settings.duckdb_memory_limit)
    if configured is None:  # not a size (e.g. -1, no limit): the operator's choice stands
        return settings.duckdb_memory_limit
    return (
        MEMORY_LIMIT if configured > (_bytes(MEMORY_LIMIT) or 0) else settings.duckdb_memory_limit
    )


def _bytes(size: str) -> float | None:
    """`4GB`, `500 MiB`, `2g`... in bytes, as DuckDB reads them (GB = 1000³, GiB = 1024³)."""
    m = _SIZE.fullmatch(size.strip())
    if m is None:
        return None
    power: int = " kmgt".index(m[2].lower() or " ")
    return float(m[1]) * float((1024 if m[3] else 1000) ** power)


def dedup_sql(src: str, h: str, out: str, resolve: str) -> str:
    """`src` without duplicates: rows whose hash `h` no other row shares stream straight
    through (as `out`); the others (`candidates`) are compared exactly by `resolve`.

    The pass that finds shared hashes (`dups`) is the only state, ~36 bytes a row in DuckDB's
    hash table, and spills past the memory limit; it is materialized since three parts read
    it. The CTEs over the source are NOT MATERIALIZED: each use is one more streaming scan of
    bronze, where a materialized one would hold the table. A join whose other side is empty
    (`dups`, for a table without duplicates) ends without reading its input.
    """
    return (
        f"WITH src AS NOT MATERIALIZED ({src}),\n"
        f"dups AS MATERIALIZED (SELECT {h} FROM src GROUP BY {h} HAVING count(*) > 1),\n"
        f"candidates AS NOT MATERIALIZED (SELECT * FROM src SEMI JOIN dups USING ({h}))\n"
        f"SELECT {out} FROM src ANTI JOIN dups USING ({h})\n"
        f"UNION ALL\n{resolve}"
    )


def fresh_name(base: str, taken: list[str]) -> str:
    """A column name none of `taken` has (DuckDB compares names case-insensitively)."""
    lower = {t.lower() for t in taken}
    name, n = base, 0
    while name.lower() in lower:
        n += 1
        name = f"{base}_{n}"
    return name


def position_column(schema: list[tuple[str, str]]) -> str:
    """The name `positioned_scan` gives each row's position, for a dataset of this schema."""
    return fresh_name("_row_position", [n for n, _ in schema])


def positioned_scan(batches: list[BatchManifest], uri: Callable[[str], str]) -> str:
    """`bronze.scan_sql` plus each row's position in the dataset (`position_column`): its
    batch in commit order, then its row in that batch's file. Larger is newer."""
    schema = bronze.common_schema(batches)
    names = [n for n, _ in schema]
    if "file_row_number" in {n.lower() for n in names}:
        # DuckDB's row number column cannot be renamed, and the data's would hide it.
        raise ConfigError(
            "A column named file_row_number hides the row order that deduplicating by key "
            "needs: rename the column, or deduplicate rows instead.",
            title="Cannot deduplicate by key",
        )
    pos, file = quote_ident(position_column(schema)), fresh_name("_source_file", names)
    groups: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    for i, b in enumerate(batches):
        groups.setdefault(tuple(b.schema), []).append((i, uri(b.data_key)))
    selects = []
    for group_schema, members in groups.items():
        have = dict(group_schema)
        cols = []
        for n, t in schema:
            col = f"_rows.{quote_ident(n)}" if n in have else "NULL"
            cols.append(f"{col if have.get(n) == t else f'CAST({col} AS {t})'} AS {quote_ident(n)}")
        files = ", ".join(quote_literal(u) for _, u in members)
        order = ", ".join(f"({quote_literal(u)}, {i})" for i, u in members)
        selects.append(
            f"SELECT {', '.join(cols)}, (_batches.batch::BIGINT << {_ROW_BITS}) | "
            f"_rows.file_row_number AS {pos} "
            f"FROM read_parquet([{files}], hive_partitioning = false, file_row_number = true, "
            f"filename = {quote_literal(file)}) AS _rows "
            f"JOIN (VALUES {order}) AS _batches(file, batch) "
            f"ON _rows.{quote_ident(file)} = _batches.file"
        )
    return "(" + " UNION ALL ".join(selects) + ")"
