"""Column types between DuckDB and Delta Lake: casts for what Delta cannot store (on write)
and DuckDB's names for Delta's types (what the catalog shows)."""

import re

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.layers import quote_ident

# DuckDB types with no Delta type. Delta has no unsigned integers, TIME, INTERVAL, UUID or
# nanosecond timestamps; these casts keep every value (text where no number type holds it).
_CASTS = {
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL(20,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
}
_AS_TEXT = re.compile(
    r"\b(UHUGEINT|TIME|TIME WITH TIME ZONE|TIMETZ|INTERVAL|UUID|BIT|BITSTRING|VARINT|BIGNUM|"
    r"UNION|ENUM|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|TIMESTAMP_NS|TIMESTAMP_MS|"
    r"TIMESTAMP_S)\b"
)


def compatible_select(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """`query` with every column Delta cannot type cast to one it can (same names, order)."""
    cols = con.execute(f"DESCRIBE ({query})").fetchall()
    replace = []
    for name, typ, *_ in cols:
        target = _CASTS.get(typ) or ("VARCHAR" if _AS_TEXT.search(typ) else None)
        if target:
            replace.append(f"CAST({quote_ident(name)} AS {target}) AS {quote_ident(name)}")
    if not replace:
        return query
    return f"SELECT * REPLACE ({', '.join(replace)}) FROM ({query})"


_SIMPLE = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "uint16": "USMALLINT",
    "uint32": "UINTEGER",
    "uint64": "UBIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "string_view": "VARCHAR",
    "binary": "BLOB",
    "large_binary": "BLOB",
    "binary_view": "BLOB",
    "date32[day]": "DATE",
    "time64[us]": "TIME",
    "null": "NULL",
}
_SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB's name for an Arrow type, as DuckDB itself would print it (what the catalog
    shows). Pure Python: a DuckDB instance per lookup costs ~30 ms, and instances kept alive
    in the catalog's threads made forked children crash before exec."""
    if str(t) in _SIMPLE:
        return _SIMPLE[str(t)]
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            return "TIMESTAMP WITH TIME ZONE"
        return {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}[
            t.unit
        ]
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_fixed_size_list(t):
        return f"{duckdb_type(t.value_type)}[{t.list_size}]"
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        names = [f.name if _SIMPLE_NAME.match(f.name) else quote_ident(f.name) for f in fields]
        inner = ", ".join(f"{n} {duckdb_type(f.type)}" for n, f in zip(names, fields, strict=True))
        return f"STRUCT({inner})"
    return str(t).upper()


def duckdb_columns(dt: DeltaTable) -> list[tuple[str, str]]:
    """The table's columns with DuckDB's type names."""
    arrow = pa.schema(dt.schema().to_arrow())
    return [(f.name, duckdb_type(f.type)) for f in arrow]
