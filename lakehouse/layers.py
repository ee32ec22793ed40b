"""Layers of the lake, naming rules, and the one identifier-quoting helper."""

import enum
import re
import unicodedata

from lakehouse.errors import LakehouseError


class Layer(enum.StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    LANDING = "landing"


TABLE_LAYERS = (Layer.BRONZE, Layer.SILVER, Layer.GOLD)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Reserved words that would need quoting in user SQL; names avoid them so queries stay plain.
_SQL_KEYWORDS = frozenset(
    """all alter and any as asc between by case cast check column constraint create cross
    current_date current_time current_timestamp default delete desc distinct drop else end
    except exists false fetch for foreign from full group having in inner insert intersect
    into is join lateral left like limit natural not null offset on or order outer primary
    references right select set some table then to true union unique update user using
    values when where window with""".split()  # noqa: SIM905 - a word list reads better than quoted strings
)


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB; the only way names reach SQL text."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for DuckDB statements that cannot take bound parameters."""
    return "'" + value.replace("'", "''") + "'"


def _snake(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss")).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def safe_name(text: str, fallback: str) -> str:
    """Lower snake_case, starts with a letter, not a keyword, at most 63 chars, never empty."""
    name = _snake(text) or fallback
    if not name[0].isalpha():
        name = f"{fallback}_{name}"
    name = name[:60].rstrip("_")
    return f"{name}_kw" if name in _SQL_KEYWORDS else name


def dataset_name_from_filename(filename: str) -> str:
    """`../Sales Q1 (2024).csv.gz` -> `sales_q1_2024`: no path parts, no extensions."""
    base = re.split(r"[\\/]", filename)[-1]
    while True:
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem or len(ext) > 8 or not ext.isalnum():
            break
        base = stem
    return safe_name(base, "dataset")


def check_table_name(name: str, what: str = "table") -> str:
    """Refuse names that are not plain lower snake_case (and so could escape their folder)."""
    if not _NAME_RE.fullmatch(name) or name in _SQL_KEYWORDS:
        raise LakehouseError(
            f"{what.capitalize()} name {name!r} is not allowed: use lower snake_case "
            "(a-z, 0-9, _), starting with a letter, at most 63 characters, not a SQL keyword.",
            title=f"Invalid {what} name",
        )
    return name


def safe_column_names(names: list[str]) -> list[str]:
    """Make column names safe and unique, keeping their order (`a`, `a` -> `a`, `a_2`)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names, start=1):
        base = safe_name(raw, f"column_{i}") if raw and raw.strip() else f"column_{i}"
        name, n = base, 2
        while name in seen:
            name = f"{base[:59]}_{n}"
            n += 1
        seen.add(name)
        out.append(name)
    return out
