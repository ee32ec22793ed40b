"""Silver's deduplication: exact (the rows of SELECT DISTINCT) without a key, newest per key
with one, whatever the hash does; and the datasets file that chooses between them."""

import io
import random

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse import ConfigError, Lakehouse, Settings, duck
from lakehouse.layers import quote_ident
from lakehouse.tables import bronze
from lakehouse.transform import silver
from lakehouse.transform.silver import DatasetOptions

# Per column: its type and literals, where each inner tuple holds values DISTINCT calls equal
# (after silver's cleaning: text trimmed, blanks NULL, the `dt` column parsed as dates).
COLUMNS: dict[str, tuple[str, list[tuple[str, ...]]]] = {
    "d": (
        "DOUBLE",
        [
            ("0.0", "-(0.0::DOUBLE)"),
            ("'nan'", "-('nan'::DOUBLE)", "'inf'::DOUBLE - 'inf'::DOUBLE"),
            ("'inf'",),
            ("NULL",),
            ("5e-324",),
        ],
    ),
    "f": ("FLOAT", [("0.0", "-(0.0::FLOAT)"), ("'nan'",), ("NULL",)]),
    "s": (
        "VARCHAR",
        [
            ("'a'", "' a'", "'a '", "e'\\ta\\n'", "'\u00a0a'"),
            ("NULL", "''", "'   '"),
            ("'A'",),
            ("'ä'",),
        ],
    ),
    "dt": ("VARCHAR", [("'2025-03-14'", "'03/14/2025'", "'14 Mar 2025'"), ("'2025-03-15'",)]),
    "l": ("INTEGER[]", [("[]",), ("[NULL]",), ("NULL",), ("[1, NULL]",), ("[1]",)]),
    "st": (
        "STRUCT(x DOUBLE, y VARCHAR)",
        [
            ("{'x': 0.0, 'y': NULL}", "{'x': -(0.0::DOUBLE), 'y': NULL}"),
            ("NULL",),
            ("{'x': NULL, 'y': NULL}",),
        ],
    ),
    "m": (
        "MAP(VARCHAR, INTEGER)",
        [("MAP {}",), ("MAP {'a': NULL}",), ("NULL",), ("MAP {'a': 1}",)],
    ),
    "iv": (
        "INTERVAL",
        [("INTERVAL 1 DAY", "INTERVAL 24 HOUR"), ("INTERVAL 1 MONTH", "INTERVAL 30 DAY")],
    ),
    "b": ("BLOB", [("''::BLOB",), ("NULL",), ("'\\x00'::BLOB",)]),
    "n": ("DECIMAL(10, 2)", [("1.5", "1.50"), ("NULL",)]),
}
SCHEMA = [(name, typ) for name, (typ, _) in COLUMNS.items()]
PARSED = {"dt": "DATE %m/%d/%Y"}
POSITION = silver.position_column(SCHEMA)
# Weak hashes force collisions: some rows share a hash with rows that differ (all kept), some
# hash alone (streamed through), and with a constant every row goes the exact way.
# The last one hashes only `s`'s length: a function of the row, so fine for rows, not of a key.
HASHES = [silver.ROW_HASH, "hash({}) % 7", "42", 'hash(length(CAST("s" AS VARCHAR)))']
KEY_HASHES = HASHES[:3]
# (class, literal) choices per column, one tuple per row.
Row = tuple[tuple[int, int], ...]


def table(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> str:
    """Table `t` of the rows, with a unique position per row in a shuffled order."""
    values = []
    for i, row in enumerate(rows):
        cells = [
            f"CAST({COLUMNS[name][1][c][v % len(COLUMNS[name][1][c])]} AS {typ})"
            for (name, typ), (c, v) in zip(SCHEMA, row, strict=True)
        ]
        values.append(f"({', '.join(cells)}, {(i * 7919) % 100_003})")
    names = ", ".join([*map(quote_ident, COLUMNS), quote_ident(POSITION)])
    con.execute(
        f"CREATE OR REPLACE TABLE t AS SELECT * FROM (VALUES {', '.join(values)}) v({names})"
    )
    return "t"


def difference(con: duckdb.DuckDBPyConnection, got: str, want: str) -> tuple[int, int, int, int]:
    """(rows got, rows wanted, got EXCEPT ALL wanted, wanted EXCEPT ALL got)."""
    row = con.execute(
        f"SELECT (SELECT count(*) FROM ({got})), (SELECT count(*) FROM ({want})), "
        f"(SELECT count(*) FROM (({got}) EXCEPT ALL ({want}))), "
        f"(SELECT count(*) FROM (({want}) EXCEPT ALL ({got})))"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def distinct(source: str) -> str:
    return f"SELECT DISTINCT {', '.join(silver.clean_exprs(SCHEMA, PARSED))} FROM {source}"


def newest_per_key(source: str, key: tuple[str, ...]) -> str:
    """The obvious (and costly) way: a window over every row."""
    cols = ", ".join(map(quote_ident, COLUMNS))
    keys = ", ".join(map(quote_ident, key))
    full = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in key)
    clean = f"(SELECT {', '.join(silver.clean_exprs(SCHEMA, PARSED))}, {POSITION} FROM {source})"
    return (
        f"SELECT {cols} FROM {clean} WHERE {full} QUALIFY row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY {POSITION} DESC) = 1 "
        f"UNION ALL SELECT DISTINCT {cols} FROM {clean} WHERE NOT ({full})"
    )


def rows_strategy(max_rows: int) -> st.SearchStrategy[list[Row]]:
    cell = [st.tuples(st.integers(0, len(c) - 1), st.integers(0, 4)) for _, c in COLUMNS.values()]
    return st.lists(st.tuples(*cell), min_size=1, max_size=max_rows)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@pytest.mark.parametrize("row_hash", HASHES)
def test_tricky_values_deduplicate_like_distinct(con, row_hash: str) -> None:
    """NaNs, -0.0, NULLs inside and outside nested values, equal intervals and decimals,
    text that trims to the same value or to NULL, dates written three ways."""
    rng = random.Random(7)
    rows = [
        tuple((rng.randrange(len(c)), rng.randrange(5)) for _, c in COLUMNS.values())
        for _ in range(400)
    ]
    source = table(con, rows)
    got = silver.clean_sql(source, SCHEMA, PARSED, row_hash=row_hash)
    n, want, extra, missing = difference(con, got, distinct(source))
    assert (n, extra, missing) == (want, 0, 0)
    assert 1 < want < 400  # the data has duplicates, and rows that differ


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy(40), which=st.sampled_from(HASHES))
def test_property_rows_equal_distinct(con, rows: list[Row], which: str) -> None:
    source = table(con, rows)
    got = silver.clean_sql(source, SCHEMA, PARSED, row_hash=which)
    n, want, extra, missing = difference(con, got, distinct(source))
    assert (n, extra, missing) == (want, 0, 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=rows_strategy(40),
    which=st.sampled_from(KEY_HASHES),
    key=st.sampled_from([("s",), ("d", "dt"), ("st", "l"), ("iv", "n", "m")]),
)
def test_property_newest_per_key(con, rows: list[Row], which: str, key: tuple[str, ...]) -> None:
    """Key columns of every kind, NULL in some rows; the newest is the largest position."""
    source = table(con, rows)
    got = silver.clean_sql(source, SCHEMA, PARSED, key, row_hash=which)
    n, want, extra, missing = difference(con, got, newest_per_key(source, key))
    assert (n, extra, missing) == (want, 0, 0)


def test_helper_names_never_clash(con) -> None:
    """Columns named like the SELECT's own helpers are data like any other."""
    con.execute(
        "CREATE OR REPLACE TABLE c AS SELECT * FROM (VALUES (1, 1, 1), (1, 1, 1), (1, 2, 1)) "
        'v("_row_hash", "_ROW_POSITION", "_row_hash_1")'
    )
    schema = [("_row_hash", "INTEGER"), ("_ROW_POSITION", "INTEGER"), ("_row_hash_1", "INTEGER")]
    assert silver.position_column(schema) == "_row_position_1"
    assert con.execute(
        f"SELECT count(*) FROM ({silver.clean_sql('c', schema, {})})"
    ).fetchone() == (2,)


def ingest(lake: Lakehouse, dataset: str, text: str, mode: str = "append") -> None:
    lake.ingest(io.BytesIO(text.encode()), dataset=dataset, filename="f.csv", mode=mode)  # type: ignore[arg-type]


def rows(lake: Lakehouse, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in lake.sql(sql).to_pylist()]


BY_ID = DatasetOptions(key=("id",), deduplicate="key")


def test_newest_row_per_key(lake: Lakehouse) -> None:
    """A corrected file re-ingested wins over the old one; within a file the last line wins;
    a batch with other columns counts in its commit order like the rest."""
    ingest(lake, "t", "id,v\n1,a\n2,b\n1,c\n3,d\n")
    ingest(lake, "t", "id,v,note\n2,B,fixed\n4,e,new\n2,B2,fixed again\n")
    ingest(lake, "t", "id,v\n4,E\n")
    r = lake.build_silver("t", options=BY_ID)
    assert (r.input_rows, r.rows, r.duplicates_dropped) == (8, 4, 4)
    assert r.key_check is not None and r.key_check.passed
    got = lake.sql("SELECT id, v, note FROM silver.t ORDER BY id").to_pylist()
    assert got == [
        {"id": 1, "v": "c", "note": None},
        {"id": 2, "v": "B2", "note": "fixed again"},
        {"id": 3, "v": "d", "note": None},
        {"id": 4, "v": "E", "note": None},
    ]


def test_rows_without_a_whole_key_lose_only_exact_duplicates(lake: Lakehouse) -> None:
    ingest(lake, "t", "id,k2,v\n1,x,a\n,x,a\n,x,a\n,x,b\n1,,a\n1,,a\n1,x,z\n")
    r = lake.build_silver("t", options=DatasetOptions(key=("id", "k2"), deduplicate="key"))
    got = rows(lake, "SELECT id, k2, v FROM silver.t ORDER BY ALL NULLS LAST")
    assert got == [(1, "x", "z"), (1, None, "a"), (None, "x", "a"), (None, "x", "b")]
    assert r.not_null_check is not None and r.not_null_check.failures == 3


def test_key_is_compared_after_cleaning(lake: Lakehouse) -> None:
    ingest(lake, "t", "code,v\n A1 ,old\nA1,new\n  ,blank\n,empty\n")
    lake.build_silver("t", options=DatasetOptions(key=("code",), deduplicate="key"))
    got = rows(lake, "SELECT code, v FROM silver.t ORDER BY ALL")
    assert got == [("A1", "new"), (None, "blank"), (None, "empty")]


def test_replace_starts_over(lake: Lakehouse) -> None:
    ingest(lake, "t", "id,v\n1,a\n2,b\n")
    ingest(lake, "t", "id,v\n1,x\n1,y\n", mode="replace")
    lake.build_silver("t", options=BY_ID)
    assert rows(lake, "SELECT id, v FROM silver.t") == [(1, "y")]


def test_weak_hash_on_the_lake(lake: Lakehouse) -> None:
    """The positioned bronze scan (both backends) with every row colliding gives the same."""
    ingest(lake, "t", "id,v\n1,a\n2,b\n1,c\n3,d\n,n\n,n\n")
    ingest(lake, "t", "id,v\n2,B\n")
    batches = bronze.require_batches(lake.storage, "t")
    schema = bronze.common_schema(batches)
    source = silver.positioned_scan(batches, lake.storage.uri)
    con = duck.connect(lake.settings)
    try:
        answers = [
            sorted(
                con.execute(silver.clean_sql(source, schema, {}, ("id",), row_hash=h)).fetchall(),
                key=str,
            )
            for h in (silver.ROW_HASH, "1")
        ]
        plain = bronze.scan_sql(batches, lake.storage.uri)
        n, want, extra, missing = difference(
            con,
            f"SELECT * EXCLUDE ({quote_ident(silver.position_column(schema))}) FROM {source}",
            f"SELECT * FROM {plain}",
        )
    finally:
        con.close()
    assert answers[0] == answers[1] == sorted([(1, "c"), (2, "B"), (3, "d"), (None, "n")], key=str)
    assert (n, want, extra, missing) == (7, 7, 0, 0)  # the positioned scan reads the same rows


def test_a_file_row_number_column_rules_out_the_key_way(lake: Lakehouse) -> None:
    ingest(lake, "t", "id,file_row_number\n1,5\n1,5\n")
    with pytest.raises(ConfigError, match="file_row_number"):
        lake.build_silver("t", options=BY_ID)
    assert lake.build_silver("t").rows == 1


def test_datasets_file_chooses_the_way(lake: Lakehouse, tmp_path) -> None:
    (tmp_path / "ds.toml").write_text(
        '[datasets.k]\nkey = "id"\ndeduplicate = "key"\n[datasets.r]\nkey = "id"\n'
    )
    lake = Lakehouse(lake.settings.replace(datasets_file=tmp_path / "ds.toml"), lake.storage)
    for name in ("k", "r"):
        ingest(lake, name, "id,v\n1,a\n1,b\n")
    assert lake.build_silver("k").rows == 1
    r = lake.build_silver("r")  # rows: both stay, and the key check says so
    assert r.rows == 2 and r.key_check is not None and not r.key_check.passed


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('deduplicate = "newest"', 'must be "rows" or "key"'),
        ('deduplicate = "key"', "needs a key"),
        ("deduplicate = true", 'must be "rows" or "key"'),
    ],
)
def test_datasets_file_errors(tmp_path, text: str, error: str) -> None:
    """Each mistake is named with the dataset it is in."""
    f = tmp_path / "datasets.toml"
    f.write_text(f"[datasets.x]\n{text}\n")
    with pytest.raises(ConfigError, match=error) as e:
        silver.load_options(f)
    assert "datasets.x" in e.value.msg


def test_options_default_and_direct_use(tmp_path) -> None:
    f = tmp_path / "datasets.toml"
    f.write_text('[datasets.a]\nkey = ["x", "y"]\ndeduplicate = "key"\n[datasets.b]\nkey = "x"\n')
    opts = silver.load_options(f)
    assert opts["a"] == DatasetOptions(("x", "y"), None, "key")
    assert opts["b"].deduplicate == "rows"
    with pytest.raises(ConfigError, match="needs a key"):
        DatasetOptions(deduplicate="key")


@pytest.mark.parametrize(
    ("configured", "used"),
    [
        ("4GB", "2GB"),
        ("2GB", "2GB"),
        ("1GB", "1GB"),
        ("1.5GiB", "1.5GiB"),
        ("3 GiB", "2GB"),
        ("-1", "-1"),
    ],
)
def test_memory_limit(tmp_path, configured: str, used: str) -> None:
    """Silver takes the configured limit up to 2GB; a value that is no size stands."""
    s = Settings(lake_root=tmp_path, state_dir=tmp_path / "state", duckdb_memory_limit=configured)
    assert silver.memory_limit(s) == used


# (type, two literals): equal under DISTINCT or not, the hash must never split equal values.
PAIRS = [
    ("TIMESTAMPTZ", "'2024-01-01 12:00:00+01'", "'2024-01-01 11:00:00+00'"),
    ("TIMETZ", "'12:00:00+01'", "'11:00:00+00'"),
    ("DOUBLE[2]", "[0.0, 1]", "[-(0.0::DOUBLE), 1]"),
    ("UNION(a INT, b INT)", "union_value(a := 1)", "union_value(b := 1)"),
    ("HUGEINT", "1", "1"),
    ("UUID", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'"),
    ("DECIMAL(38, 2)", "1.10", "1.1"),
    ("MAP(VARCHAR, DOUBLE)", "MAP {'a': 'nan'::DOUBLE}", "MAP {'a': -('nan'::DOUBLE)}"),
    ("FLOAT[]", "['nan'::FLOAT]", "[-('nan'::FLOAT)]"),
    ("INTERVAL", "INTERVAL 1 MONTH", "INTERVAL 720 HOUR"),
    ("BIT", "'101'", "'101'"),
]


@pytest.mark.parametrize(("typ", "a", "b"), PAIRS)
def test_other_types_deduplicate_like_distinct(con, typ: str, a: str, b: str) -> None:
    """Types a bronze batch can hold beyond the tricky table's, in pairs that DISTINCT
    folds into one value or keeps apart."""
    values = ", ".join(f"(CAST({v} AS {typ}))" for v in (a, b, a, "NULL"))
    con.execute(f"CREATE OR REPLACE TABLE p AS SELECT * FROM (VALUES {values}) v(x)")
    want = "SELECT DISTINCT x FROM p"
    for row_hash in (silver.ROW_HASH, "42"):
        got = silver.clean_sql("p", [("x", typ)], {}, row_hash=row_hash)
        n, m, extra, missing = difference(con, got, want)
        assert (n, extra, missing) == (m, 0, 0)
