"""What a `lake` does differently inside a notebook step: it records, and in a trial it
publishes to a scratch lake (see `lakehouse.steps.context`)."""

from __future__ import annotations

from pathlib import Path

from lakehouse.layers import Layer, check_table_name
from lakehouse.query.inputs import tables_read
from lakehouse.settings import Settings
from lakehouse.steps.checks import check_description
from lakehouse.steps.context import StepContext, StepError, named_tables, reads_files
from lakehouse.storage import LocalStorage, Storage
from lakehouse.tables import catalog
from lakehouse.tables.catalog import TableInfo
from lakehouse.tables.snapshots import Snapshot


class Recorder:
    def __init__(self, settings: Settings, ctx: StepContext) -> None:
        self.ctx = ctx
        self.scratch_settings: Settings | None = None
        self.scratch: Storage | None = None
        if ctx.mode == "trace" and ctx.scratch:
            self.scratch_settings = settings.replace(storage="local", lake_root=Path(ctx.scratch))
            self.scratch = LocalStorage(Path(ctx.scratch))

    @property
    def run_id(self) -> str | None:
        return self.ctx.run_id

    def overlay(self, infos: list[TableInfo], layer: Layer | str | None) -> list[TableInfo]:
        """The lake's tables, with the trial's own publishes in place of the lake's."""
        if self.scratch is None:
            return infos
        mine = {t.qualified_name: t for t in catalog.list_tables(self.scratch, layer)}
        out = [mine.pop(t.qualified_name, t) for t in infos]
        return out + list(mine.values())

    def own_table(self, layer: Layer | str, name: str) -> TableInfo | None:
        """The trial's version of a table it published, if it did."""
        if self.scratch is None or Layer(layer) == Layer.BRONZE:
            return None
        found = catalog.find_tables(self.scratch, [(Layer(layer).value, name)])
        return next(iter(found.values()))

    def sql(self, sql: str, how: str) -> None:
        """Which lake tables SQL reads; SQL that reads files is recorded as such."""
        if reads_files(sql):
            self.ctx.write("outside", what=" ".join(sql.split())[:300], how=how)
        names = tables_read(sql)
        self.ctx.reads(named_tables(sql) if names is None else names, how)

    def read(self, layer: Layer | str, name: str, how: str) -> None:
        self.ctx.reads([f"{Layer(layer).value}.{name}"], how)

    def before_publish(self, layer: Layer | str, table: str) -> tuple[Settings, Storage] | None:
        """Refuse what a step may not publish; where a trial publishes instead (None: the lake)."""
        layer = Layer(layer)
        check_table_name(table)
        if layer != Layer.GOLD:
            raise StepError(
                f"A notebook step publishes a gold table; this one publishes {layer.value}."
                f"{table}. Silver comes from bronze through the datasets file.",
            )
        if self.ctx.mode == "run" and self.ctx.table and table != self.ctx.table:
            raise StepError(
                f"This step publishes gold.{self.ctx.table}, not gold.{table}: promote the "
                "notebook again to change what it publishes.",
            )
        if self.scratch is not None and self.scratch_settings is not None:
            return self.scratch_settings, self.scratch
        return None

    def published(self, snap: Snapshot) -> None:
        self.ctx.write(
            "publish",
            table=f"{snap.layer}.{snap.table}",
            rows=snap.rows,
            version=snap.snapshot_id,
            inputs=sorted(snap.inputs or {}),
        )

    def check(self, description: str, passed: bool, detail: str, kind: str) -> None:
        self.ctx.write(
            "check", name=check_description(description), passed=passed, detail=detail, kind=kind
        )
