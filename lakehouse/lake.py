"""The `Lakehouse`: the one object entrypoints build from Settings and hand to everything else."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import duckdb

from lakehouse import duck
from lakehouse.duck import parquet_scan
from lakehouse.errors import QueryError, TableNotFoundError
from lakehouse.ids import new_id
from lakehouse.ingest import landing
from lakehouse.ingest.landing import LandingFile
from lakehouse.ingest.load import IngestResult, Progress, ingest
from lakehouse.layers import TABLE_LAYERS, Layer
from lakehouse.query import charts
from lakehouse.query.charts import ChartData, ChartSpec
from lakehouse.query.engine import QueryEngine
from lakehouse.query.inputs import inputs_of
from lakehouse.query.results import ExportResult, QueryResult
from lakehouse.settings import Settings
from lakehouse.steps.checks import evaluate_check
from lakehouse.steps.context import StepContext
from lakehouse.steps.recorder import Recorder
from lakehouse.storage import Storage, open_storage
from lakehouse.storage.staging import folder as staging_folder
from lakehouse.tables import bronze, catalog, delta, retention, snapshots
from lakehouse.tables.bronze import BatchManifest, Mode
from lakehouse.tables.catalog import TableInfo
from lakehouse.tables.snapshots import Snapshot
from lakehouse.transform import models, silver

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.steps.promote import Promotion


class Lakehouse:
    """Ingest into bronze, publish silver/gold Delta tables, list and read tables."""

    def __init__(
        self,
        settings: Settings | None = None,
        storage: Storage | None = None,
        *,
        step: StepContext | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.storage = storage or open_storage(self.settings)
        # Inside a notebook step (a promote trial or a Dagster run): what it reads, publishes
        # and checks is recorded; a trial publishes to a scratch lake.
        self.step = Recorder(self.settings, step) if step else None
        self._engine: QueryEngine | None = None
        # The app shares one Lakehouse across sessions: without the lock, two sessions' first
        # queries each built a pool (query_workers exceeded; close() stopped only the last).
        self._engine_lock = threading.Lock()

    # -- bronze ---------------------------------------------------------------------------
    def ingest(
        self,
        source: Path | str | BinaryIO,
        *,
        dataset: str | None = None,
        mode: Mode = "append",
        filename: str | None = None,
        who: str | None = None,
        progress: Progress | None = None,
    ) -> IngestResult:
        return ingest(
            self.settings,
            self.storage,
            source,
            dataset=dataset,
            mode=mode,
            filename=filename,
            who=who,
            progress=progress,
        )

    # -- silver / gold snapshots ----------------------------------------------------------
    def publish(
        self,
        layer: Layer | str,
        table: str,
        data: str | pa.Table | pa.RecordBatchReader,
        run_id: str | None = None,
    ) -> Snapshot:
        """Publish SQL (run against the lake's views) or Arrow as the table's new snapshot.

        For SQL, the snapshot records which table snapshots it read (for freshness checks).
        """
        settings, storage = self.settings, self.storage
        if self.step is not None:
            settings, storage = self.step.before_publish(layer, table) or (settings, storage)
            run_id = run_id or self.step.run_id
            if isinstance(data, str):
                self.step.sql(data, "publish")
        if not isinstance(data, str):
            snap = snapshots.publish(settings, storage, None, layer, table, data, run_id)
        else:
            infos = self.tables()
            con = duck.connect(self.settings)
            try:
                self._create_views(con, infos)
                snap = snapshots.publish(
                    settings,
                    storage,
                    con,
                    layer,
                    table,
                    data,
                    run_id,
                    inputs=inputs_of(data, infos),
                )
            finally:
                con.close()
        if self.step is not None:
            self.step.published(snap)
        return snap

    def check(self, description: str, condition: bool | str) -> bool:
        """A data check: True/False, or SQL giving one boolean (`SELECT count(*) = 0 FROM ...`,
        or just the expression). In a notebook step it becomes an asset check of the step's
        table; it never stops the notebook (an `assert` does)."""
        passed, detail = evaluate_check(self, description, condition)
        if self.step is not None:
            kind = "sql" if isinstance(condition, str) else "value"
            self.step.check(description, passed, detail, kind)
        return passed

    def promote(
        self, path: Path | str, *, name: str | None = None, dry_run: bool = False
    ) -> Promotion:
        """Make a notebook that publishes one gold table a pipeline step (`ratatouille promote`):
        run it once in a fresh kernel, infer what it reads, publishes and checks, write
        `notebook_steps_dir/<name>.ipynb`, reload Dagster and start the first build."""
        from lakehouse.steps.promote import promote

        return promote(self.settings, self.storage, Path(path), name=name, dry_run=dry_run)

    def build_silver(
        self,
        dataset: str,
        run_id: str | None = None,
        options: silver.DatasetOptions | None = None,
    ) -> silver.SilverResult:
        """Clean, type and deduplicate a bronze dataset into `silver.<dataset>`."""
        if options is None:
            options = silver.load_options(self.settings.datasets_file).get(dataset)
        return silver.build(self.settings, self.storage, dataset, run_id, options)

    def build_model(self, model: models.Model, run_id: str | None = None) -> models.ModelResult:
        """Publish a gold SQL model's SELECT as `gold.<name>`, then run its checks.

        Model files may come from app users: the SELECT is checked against the query layers
        again (the file may predate a change of RATATOUILLE_QUERY_LAYERS) and runs on a
        connection that can read those layers only (`models.locked_connection`).
        """
        models.check_layers(model, self.settings.query_layers)
        infos = self.tables()
        inputs = inputs_of(model.select, infos)
        with (
            staging_folder(self.settings, f"model-{new_id()}") as staging,
            models.locked_connection(
                self.settings, self.storage, infos, model.name, staging
            ) as con,
        ):
            return models.build(self.settings, self.storage, con, model, run_id, inputs, staging)

    def models(self) -> list[models.Model]:
        """The valid gold SQL models in `models_dir` (see `models.load` for the invalid ones)."""
        return models.load(self.settings.models_dir, self.settings.query_layers)[0]

    def snapshot(
        self, layer: Layer | str, table: str, as_of: str | int | datetime | None = None
    ) -> Snapshot:
        if as_of is None:
            return snapshots.current(self.storage, layer, table)
        return snapshots.as_of(self.storage, layer, table, as_of)

    def history(self, layer: Layer | str, table: str) -> list[Snapshot]:
        return snapshots.history(self.storage, layer, table)

    def restore(self, layer: Layer | str, table: str, snapshot_id: str) -> Snapshot:
        """Make an earlier version current again (a new version; newer ones stay in history)."""
        return snapshots.restore(self.storage, layer, table, snapshot_id)

    def vacuum(self, layer: Layer | str, table: str) -> int:
        """Delete files past the history window (publish does this too); how many went."""
        return retention.vacuum(self.settings, self.storage, layer, table)

    def table_uri(self, layer: Layer | str, table: str) -> str:
        """Where other engines (Spark, Trino, Polars, Daft, DuckDB `delta_scan`) find a silver
        or gold Delta table; pass `delta_storage_options()` along for S3."""
        return delta.table_uri(self.settings, layer, table)

    def delta_storage_options(self) -> dict[str, str]:
        """delta-rs / object_store options for the lake's S3 (empty for a local lake)."""
        return delta.storage_options(self.settings)

    # -- landing, bronze batches and freshness (what the sensors ask) ---------------------
    def pending_landing(
        self, now: datetime | None = None
    ) -> tuple[list[LandingFile], list[LandingFile]]:
        """(landing files ready to ingest, files still being written), oldest first."""
        return landing.pending(self.storage, self.settings.landing_settle_s, now)

    def ingest_landing(
        self, key: str, run_id: str | None = None, *, dataset: str | None = None
    ) -> IngestResult:
        """Ingest one landing file into bronze; a rejected file moves to `landing/_rejected/`."""
        return landing.ingest_file(self.settings, self.storage, key, run_id, dataset=dataset)

    def bronze_datasets(self) -> list[str]:
        """Every dataset with a folder in bronze."""
        return self.storage.list_dirs(f"{Layer.BRONZE.value}/")

    def bronze_batches(self, dataset: str) -> list[BatchManifest]:
        """The dataset's current bronze batches, oldest first (empty if it has none)."""
        return bronze.current_batches(self.storage, dataset)

    def built_from(self, layer: Layer | str, table: str) -> dict[str, str] | None:
        """The input snapshots the table's current snapshot records; None if there is none."""
        try:
            return self.snapshot(layer, table).inputs
        except TableNotFoundError:
            return None

    def find_tables(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], TableInfo | None]:
        """(layer, name) → its TableInfo, or None where there is no such table."""
        return catalog.find_tables(self.storage, wanted)

    def stale_inputs(
        self, layer: Layer | str, table: str, infos: list[TableInfo]
    ) -> list[TableInfo]:
        """The inputs that changed since the table was built (all of them if it never was)."""
        try:
            snap = self.snapshot(layer, table)
        except TableNotFoundError:
            return infos
        if snap.inputs is None:  # built without a record: compare times
            built = datetime.fromisoformat(snap.created_at)
            return [i for i in infos if datetime.fromisoformat(i.updated_at) > built]
        return [i for i in infos if snap.inputs.get(i.qualified_name) != i.snapshot_id]

    # -- catalog and reading --------------------------------------------------------------
    def tables(self, layer: Layer | str | None = None) -> list[TableInfo]:
        infos = catalog.list_tables(self.storage, layer)
        return infos if self.step is None else self.step.overlay(infos, layer)

    def table(self, layer: Layer | str, name: str) -> TableInfo:
        if self.step is not None:
            self.step.read(layer, name, "table")
            if own := self.step.own_table(layer, name):
                return own
        return catalog.table_info(self.storage, layer, name)

    def connect_duckdb(self, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB with a view per table: `bronze.x`, `silver.y`, `gold.z`."""
        con = duck.connect(self.settings, memory_limit=memory_limit)
        self.refresh_views(con)
        return con

    def refresh_views(self, con: duckdb.DuckDBPyConnection) -> None:
        """Point every view at its table's current version (cheap: manifests and logs only)."""
        self._create_views(con, self.tables())

    @staticmethod
    def _create_views(con: duckdb.DuckDBPyConnection, tables: list[TableInfo]) -> None:
        for layer in TABLE_LAYERS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer.value}")
        for t in tables:
            duck.create_view(con, t.layer, t.name, t.scan_sql)

    def read(
        self, layer: Layer | str, table: str, as_of: str | int | datetime | None = None
    ) -> pa.Table:
        """A whole table as Arrow (for small tables; big ones go through `sql`)."""
        if as_of is None:
            scan = self.table(layer, table).scan_sql  # recorded there in a notebook step
        else:
            if self.step is not None:
                self.step.read(layer, table, "read")
            files = self.snapshot(layer, table, as_of).files
            scan = parquet_scan([self.storage.uri(k) for k in files])
        return self.sql(f"SELECT * FROM {scan}", views=False)

    def preview(self, layer: Layer | str, table: str, rows: int = 20) -> pa.Table:
        """The first rows of a table as it reads now (DuckDB stops scanning once it has them)."""
        scan = self.table(layer, table).scan_sql
        return self.sql(f"SELECT * FROM {scan} LIMIT {max(int(rows), 0)}", views=False)

    def read_snapshot_head(self, snap: Snapshot, rows: int) -> pa.Table:
        """The first rows of one snapshot (previews)."""
        scan = parquet_scan([self.storage.uri(k) for k in snap.files])
        return self.sql(f"SELECT * FROM {scan} LIMIT {int(rows)}", views=False)

    def sql(self, query: str, *, views: bool = True) -> pa.Table:
        """Run trusted SQL (pipelines, notebooks) against the lake; the result as Arrow."""
        if self.step is not None and views:
            self.step.sql(query, "sql")
        con = self.connect_duckdb() if views else duck.connect(self.settings)
        try:
            return con.execute(query).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(str(e), title="DuckDB could not run this query") from e
        finally:
            con.close()

    # -- untrusted queries ----------------------------------------------------------------
    @property
    def engine(self) -> QueryEngine:
        """The worker pool for untrusted SQL, started on first use."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = QueryEngine(self.settings)
            return self._engine

    def query(
        self, sql: str, *, max_rows: int | None = None, time_limit_s: float | None = None
    ) -> QueryResult:
        """Run untrusted SQL (a user's): read-only, guarded, limited, in a worker process."""
        if self.step is not None:
            self.step.sql(sql, "query")
        return self.engine.query(sql, max_rows=max_rows, time_limit_s=time_limit_s)

    def export(
        self, sql: str, path: Path | str, fmt: Literal["csv", "parquet"] | None = None
    ) -> ExportResult:
        """Every row of untrusted SQL streamed to a CSV or Parquet file."""
        return self.engine.export(sql, path, fmt)

    def chart(self, sql: str, spec: ChartSpec) -> ChartData:
        """Aggregate untrusted SQL for a chart in DuckDB: at most 5,000 marks come back."""
        return charts.chart(self.engine, sql, spec)

    def close(self) -> None:
        with self._engine_lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: Settings | None = None, **overrides: object) -> Lakehouse:
    """`lake = connect()` in a notebook: the same lake the pipelines and the app use."""
    if overrides:
        settings = (settings or Settings()).replace(**overrides)
    return Lakehouse(settings, step=StepContext.from_env())


__all__ = ["Lakehouse", "connect"]
