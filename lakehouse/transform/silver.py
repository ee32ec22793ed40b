"""Silver: a bronze dataset's batches as one clean, typed, deduplicated snapshot.

Every batch is unioned by column name (columns a batch lacks are NULL, widened types where
batches disagree), strings are trimmed and blanks become NULL, text columns whose every value
is a date or timestamp are parsed, and exact duplicate rows are dropped. All of it is one
DuckDB statement streamed into the snapshot, so data larger than memory spills, never loads.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lakehouse import duck
from lakehouse.errors import ConfigError, QueryError, TableNotFoundError
from lakehouse.layers import Layer, check_table_name, quote_ident, quote_literal
from lakehouse.settings import Settings
from lakehouse.storage import Storage
from lakehouse.tables import bronze, snapshots
from lakehouse.tables.bronze import SchemaDrift, schema_drift
from lakehouse.tables.snapshots import Snapshot
from lakehouse.transform import checks

# Characters trimmed from text: spaces, tabs, line breaks and the no-break space.
_BLANKS = " \t\r\n\u00a0"
# Date layouts tried on text columns. Day-first and month-first slashes are ambiguous, so a
# column uses whichever one parses all of its slashed values (month-first when both do).
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%b %d, %Y", "%d %B %Y")
_SLASH_FORMATS = ("%m/%d/%Y", "%d/%m/%Y")
# Rows looked at first: a column is a date only if *every* value is one, so one value in the
# first rows that is not rules it out, and the full check runs only for the rest. Ordinary
# text then costs one read of a thousand rows.
_SAMPLE_ROWS = 1_000
_TEXT = "VARCHAR"


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset declares in the datasets file (`[datasets.<name>]`)."""

    key: tuple[str, ...] = ()
    description: str | None = None


def load_options(path: Path) -> dict[str, DatasetOptions]:
    """Read `[datasets.<name>] key = [...], description = "..."`; no file means no options."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}", title="Could not read the datasets file") from e
    out = {}
    for name, opts in raw.get("datasets", {}).items():
        key = opts.get("key", [])
        key = [key] if isinstance(key, str) else key
        if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
            raise ConfigError(
                f"{path}: datasets.{name}.key must be a column name or a list of them.",
                title="Invalid datasets file",
            )
        out[name] = DatasetOptions(tuple(key), opts.get("description"))
    return out


@dataclass(frozen=True)
class SilverResult:
    snapshot: Snapshot
    input_rows: int
    batches: int
    duplicates_dropped: int
    null_share: dict[str, float]
    parsed: dict[str, str]  # text column → the type its values were parsed into
    drift: SchemaDrift  # against the previous silver snapshot
    elapsed_s: float
    key: tuple[str, ...] = ()
    key_check: checks.DataCheckResult | None = field(default=None)
    not_null_check: checks.DataCheckResult | None = field(default=None)

    @property
    def rows(self) -> int:
        return self.snapshot.rows


def build(
    settings: Settings,
    storage: Storage,
    dataset: str,
    run_id: str | None = None,
    options: DatasetOptions | None = None,
) -> SilverResult:
    """Publish the cleaned union of a bronze dataset's batches as `silver.<dataset>`."""
    started = time.monotonic()
    check_table_name(dataset, "dataset")
    batches = bronze.require_batches(storage, dataset)
    options = options or DatasetOptions()
    schema = bronze.common_schema(batches)
    missing = [k for k in options.key if k not in dict(schema)]
    if missing:
        raise ConfigError(
            f"The key of {dataset!r} names columns it does not have: {', '.join(missing)}. "
            f"Its columns: {', '.join(n for n, _ in schema)}.",
            title="Invalid dataset key",
        )
    try:
        previous: list[tuple[str, str]] | None = snapshots.current(
            storage, Layer.SILVER, dataset
        ).schema
    except TableNotFoundError:
        previous = None
    con = duck.connect(settings)
    try:
        source = bronze.scan_sql(batches, storage.uri)
        try:
            parsed = detect_temporal(con, source, [n for n, t in schema if t == _TEXT])
        except duckdb.Error as e:
            raise QueryError(str(e), title=f"Could not read bronze.{dataset}") from e
        sql = clean_sql(source, schema, parsed)
        snap = snapshots.publish(
            settings,
            storage,
            con,
            Layer.SILVER,
            dataset,
            sql,
            run_id,
            inputs={f"{Layer.BRONZE.value}.{dataset}": batches[-1].batch_id},
        )
        uris = [storage.uri(k) for k in snap.files]
        relation = duck.parquet_scan(uris)
        key_check = not_null = None
        if options.key:
            key_check = checks.unique(con, relation, options.key)
            not_null = checks.not_null(con, relation, options.key)
        nulls = null_share(con, uris, [n for n, _ in snap.schema], snap.rows)
    finally:
        con.close()
    input_rows = sum(b.rows for b in batches)
    return SilverResult(
        snapshot=snap,
        input_rows=input_rows,
        batches=len(batches),
        duplicates_dropped=input_rows - snap.rows,
        null_share=nulls,
        parsed=parsed,
        drift=schema_drift(previous, snap.schema),
        elapsed_s=time.monotonic() - started,
        key=options.key,
        key_check=key_check,
        not_null_check=not_null,
    )


def _blank_to_null(col: str) -> str:
    return f"NULLIF(trim({quote_ident(col)}, {quote_literal(_BLANKS)}), '')"


def _parse_expr(text: str, formats: tuple[str, ...]) -> str:
    tries = ", ".join(f"try_strptime({text}, {quote_literal(f)})" for f in formats)
    return f"coalesce({tries})"


def _date_formats(slash: str) -> tuple[str, ...]:
    return (*_DATE_FORMATS, slash)


def detect_temporal(
    con: duckdb.DuckDBPyConnection, source: str, text_cols: list[str]
) -> dict[str, str]:
    """Text columns whose every non-blank value is a date (→ DATE) or timestamp (→ TIMESTAMP).

    Returned values are the target type plus, for dates, the slash layout used:
    `DATE %m/%d/%Y`, `DATE %d/%m/%Y` or `TIMESTAMP`.
    """
    if not text_cols:
        return {}
    sample = f"(SELECT * FROM {source} LIMIT {_SAMPLE_ROWS})"
    # "?" (no values in the sample) stays a candidate: the column may fill in later.
    candidates = [c for c, n in _temporal_counts(con, sample, text_cols).items() if n]
    if not candidates:
        return {}
    out = {}
    for col, found in _temporal_counts(con, source, candidates).items():
        if found not in ("", "?"):
            out[col] = found
    return out


def _temporal_counts(
    con: duckdb.DuckDBPyConnection, source: str, cols: list[str]
) -> dict[str, str]:
    """One aggregate pass: for each column, the temporal reading every non-blank value fits."""
    exprs = []
    for col in cols:
        t = _blank_to_null(col)
        exprs += [
            f"count({t})",
            f"count({_parse_expr(t, _date_formats(_SLASH_FORMATS[0]))})",
            f"count({_parse_expr(t, _date_formats(_SLASH_FORMATS[1]))})",
            f"count(TRY_CAST({t} AS TIMESTAMP))",
        ]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {source}").fetchone()
    assert row is not None
    out = {}
    for i, col in enumerate(cols):
        values, us, eu, ts = row[4 * i : 4 * i + 4]
        if not values:
            out[col] = "?"
        elif us == values:
            out[col] = f"DATE {_SLASH_FORMATS[0]}"
        elif eu == values:
            out[col] = f"DATE {_SLASH_FORMATS[1]}"
        elif ts == values:
            out[col] = "TIMESTAMP"
        else:
            out[col] = ""
    return out


def clean_sql(source: str, schema: list[tuple[str, str]], parsed: dict[str, str]) -> str:
    """The silver SELECT: trimmed text, blanks as NULL, parsed dates, no duplicate rows."""
    exprs = []
    for col, typ in schema:
        if typ != _TEXT:
            exprs.append(quote_ident(col))
            continue
        t = _blank_to_null(col)
        reading = parsed.get(col, "")
        if reading.startswith("DATE"):
            t = f"CAST({_parse_expr(t, _date_formats(reading.split(' ', 1)[1]))} AS DATE)"
        elif reading == "TIMESTAMP":
            t = f"CAST({t} AS TIMESTAMP)"
        exprs.append(f"{t} AS {quote_ident(col)}")
    return f"SELECT DISTINCT {', '.join(exprs)} FROM {source}"


def null_share(
    con: duckdb.DuckDBPyConnection, uris: list[str], columns: list[str], rows: int
) -> dict[str, float]:
    """Share of NULLs per column, from the Parquet footers' statistics (no data is read).

    Nested columns have no single count there and report 0.
    """
    if not rows or not columns or not uris:
        return dict.fromkeys(columns, 0.0)
    files = ", ".join(quote_literal(u) for u in uris)
    counts = dict(
        con.execute(
            f"SELECT path_in_schema, sum(stats_null_count) FROM parquet_metadata([{files}]) "
            "GROUP BY ALL"
        ).fetchall()
    )
    return {c: round(float(counts.get(c) or 0) / rows, 4) for c in columns}
