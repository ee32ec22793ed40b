"""Gold SQL models run locked (findings 1 and 2 of the security review).

A model file may come from an app user ("Save as gold model"), so it is untrusted SQL: the
guard checks it against the query layers, and it builds on a DuckDB connection that can read
those layers and nothing else. The lock is proved on its own, with the guard bypassed (a
`Model` built by hand), so that a guard bug alone never reaches the host or the network.
"""

import http.server
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import ConfigError, Lakehouse, LakehouseError, QueryError, Settings
from lakehouse.errors import TableNotFoundError
from lakehouse.transform import models
from tests.report import Record
from tests.support.lakedirs import lake_dirs

# Finding 1: the guard took the CTE's name as the path's alias at any nesting level.
CTE_TRICK = (
    "SELECT * FROM '{path}' WHERE EXISTS "
    '(WITH "{path}" AS (SELECT 1 AS a) SELECT a FROM "{path}")'
)


@pytest.fixture(autouse=True)
def _no_developer_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lakehouse]:
    values: dict[str, object] = dict(lake_dirs(tmp_path))
    if request.param == "s3":
        values.update(request.getfixturevalue("s3_env"))
    with Lakehouse(Settings(**values)) as lk:  # type: ignore[arg-type]
        lk.ingest(io.BytesIO(b"id,amount\n1,10\n2,20\n"), dataset="orders", filename="o.csv")
        lk.build_silver("orders")
        yield lk


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file outside the lake that a hostile model wants to publish."""
    path = tmp_path / "secret.csv"
    path.write_text("a,token\n1,hunter2-host-secret\n")
    return path


class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"a,token\n1,from-the-network\n")

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback that records every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Listener,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _gold_is_empty(lake: Lakehouse, name: str) -> bool:
    try:
        lake.snapshot("gold", name)
    except TableNotFoundError:
        return True
    return False


def _build_bypassing_guard(lake: Lakehouse, name: str, select: str) -> None:
    """Build a model whose SELECT never went through the guard, on the locked connection."""
    model = models.Model(name=name, sql=select, select=select)
    with models.locked_connection(lake.settings, lake.storage, lake.tables(), name) as con:
        models.build(lake.settings, lake.storage, con, model)


def test_finding1_query_cannot_be_saved_as_a_model(
    lake: Lakehouse, secret: Path, record: Record
) -> None:
    sql = CTE_TRICK.format(path=secret)
    with pytest.raises(ConfigError):
        models.save(lake.settings, "leak", sql, storage=lake.storage)
    assert not (lake.settings.models_dir / "leak.sql").exists()
    record(
        f"save the finding-1 CTE-alias query as gold model ({lake.settings.storage})",
        "refused at save (guard, else binding on the locked connection); no file written",
    )


@pytest.mark.parametrize(
    "select",
    [
        "SELECT * FROM read_csv('{path}')",
        "SELECT * FROM '{path}'",
        CTE_TRICK,
        "SELECT * FROM silver.orders, (SELECT * FROM read_csv_auto(['{path}']))",
    ],
    ids=["read_csv", "quoted-path", "cte-trick", "list-argument"],
)
def test_lock_alone_refuses_host_files(
    lake: Lakehouse, secret: Path, select: str, record: Record
) -> None:
    """Each way to name a host file; the guard is bypassed, so only the lock stands."""
    sql = select.format(path=secret)
    with pytest.raises(QueryError, match="access denied") as e:
        _build_bypassing_guard(lake, "leak", sql)
    assert "hunter2" not in e.value.msg
    assert _gold_is_empty(lake, "leak")
    # The same SQL as a hand-written file, through the pipeline's path: refused, unpublished.
    (lake.settings.models_dir / "leak.sql").write_text(sql)
    found, errors = models.load(lake.settings.models_dir, lake.settings.query_layers)
    for model in found:  # the guard let it through: the lock must still stop it
        with pytest.raises(LakehouseError):
            lake.build_model(model)
    assert found or "leak.sql" in errors
    assert _gold_is_empty(lake, "leak")
    record(
        f"model reading a host file, guard bypassed: {select.format(path='<host file>')[:50]}… "
        f"({lake.settings.storage})",
        "locked connection refused it (Permission Error), nothing published to gold",
    )


def test_lock_alone_refuses_urls(
    lake: Lakehouse, http_server: tuple[str, list[str]], record: Record
) -> None:
    url, hits = http_server
    for select in (f"SELECT * FROM read_csv('{url}/x.csv')", f"SELECT * FROM '{url}/x.csv'"):
        with pytest.raises(QueryError):
            _build_bypassing_guard(lake, "ssrf", select)
    assert hits == []
    assert _gold_is_empty(lake, "ssrf")
    record(
        f"model fetching http:// from a loopback server, guard bypassed ({lake.settings.storage})",
        "refused before any request left; the server saw 0 requests",
        figures=f"requests seen: {len(hits)}",
    )


@pytest.mark.s3
def test_lock_refuses_other_buckets(
    s3_env: dict[str, object], tmp_path: Path, record: Record
) -> None:
    """The S3 key reaches the landing bucket; the locked connection must not."""
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state", **s3_env)  # type: ignore[arg-type]
    with Lakehouse(settings) as lake:
        lake.storage.put_bytes("landing/drop.csv", b"a,token\n1,landing-secret\n")
        uri = lake.storage.uri("landing/drop.csv")
        with pytest.raises(QueryError, match="access denied"):
            _build_bypassing_guard(lake, "peek", f"SELECT * FROM read_csv('{uri}')")
        assert _gold_is_empty(lake, "peek")
    record(
        "model reading s3://<landing bucket>/ with the lake's key, guard bypassed",
        "locked connection refused the bucket outside the query layers",
    )


def test_finding2_query_layers_bind_models(lake: Lakehouse, record: Record) -> None:
    narrow = Lakehouse(lake.settings.replace(query_layers="silver,gold"), lake.storage)
    with pytest.raises(ConfigError, match="bronze"):
        models.save(narrow.settings, "raw", "SELECT * FROM bronze.orders", storage=lake.storage)
    # A file saved before the layers were narrowed: refused when loaded and when built.
    model = models.parse("raw", "SELECT * FROM bronze.orders")
    assert models.load(lake.settings.models_dir, narrow.settings.query_layers)[0] == []
    with pytest.raises(ConfigError, match="bronze"):
        narrow.build_model(model)
    # The lock alone: bronze's files are outside the connection's allowed folders.
    bronze = lake.table("bronze", "orders").scan_sql
    with pytest.raises(QueryError, match="access denied"):
        _build_bypassing_guard(narrow, "raw", f"SELECT * FROM {bronze}")
    assert _gold_is_empty(lake, "raw")
    # What the layers allow still builds, checks included.
    built = narrow.build_model(models.parse("ok", "-- key: id\nSELECT * FROM silver.orders"))
    assert built.snapshot.rows == 2 and all(c.passed for c in built.checks)
    record(
        f"query_layers=silver,gold; model reads bronze.orders ({lake.settings.storage})",
        "refused at save, at load and at build; the lock alone refuses bronze's files",
    )
