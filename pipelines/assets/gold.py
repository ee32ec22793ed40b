"""Gold: SQL models from `models_dir`, one asset each, plus plain Python assets."""

import hashlib
import re
from collections.abc import Mapping, Sequence

import dagster as dg

from lakehouse import ConfigError, Model, Settings
from lakehouse import models as sql_models
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.keys import READS, SILVER, dep_on, gold_key
from pipelines.metadata import snapshot_metadata
from pipelines.resources import LakehouseResource
from pipelines.schedules import model_schedule


def check_name(spec_name: str) -> str:
    """`unique(month, category)` → `unique_month_category` (Dagster check names are words)."""
    return "_".join("".join(ch if ch.isalnum() else " " for ch in spec_name).split()).lower()


def model_asset(model: Model) -> dg.AssetsDefinition:
    key = gold_key(model.name)
    specs = [
        dg.AssetCheckSpec(check_name(c.name), asset=key, description=c.name)
        for c in model.all_checks
    ]

    @dg.asset(
        key=key,
        deps=dep_on(model.deps),
        check_specs=specs,
        description=model.description or f"SQL model {model.name}.sql",
        group_name="gold",
        kinds={"sql", "duckdb"},
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        automation_condition=GOLD_FOLLOWS_INPUTS,
        pool=f"gold_{model.name}",  # one build of a table at a time: the last one wins
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"), "path": str(model.path)},
    )
    def _model(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]
        lake = lakehouse.lake
        result = lake.build_model(model, run_id=context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                **snapshot_metadata(lake, result.snapshot),
                "elapsed_s": round(result.elapsed_s, 3),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=check_name(o.name),
                    passed=o.passed,
                    description=o.description,
                    metadata={"failures": o.failures, "sample": o.sample},
                )
                for o in result.checks
            ],
        )

    return _model


def broken_key(file_name: str, used: set[str]) -> dg.AssetKey:
    """`gold/<name>` while no other asset has it, else `invalid_model/<name>`: file names are
    unique in the folder, so no two assets can end up with the same key."""
    name = file_name.removesuffix(".sql")
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in used:
        return gold_key(name)
    safe = re.sub(r"\W", "_", name)
    if safe != name:  # `a-b` and `a_b` must not meet
        safe += "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return dg.AssetKey(["invalid_model", safe])


def broken_model_asset(
    file_name: str, error: ConfigError, used: set[str] | None = None
) -> dg.AssetsDefinition:
    """A model file that does not load stays visible, and says why when materialized."""
    key = broken_key(file_name, used or set())

    @dg.asset(
        key=key,
        description=f"Invalid model {file_name}: {error.title}. {error.msg}",
        group_name="gold",
        kinds={"sql"},
        metadata={"error": f"{error.title}: {error.msg}"},
    )
    def _broken() -> None:
        raise dg.Failure(description=f"{error.title}: {error.msg}")

    return _broken


def gold_inputs(assets: Sequence[dg.AssetsDefinition]) -> dict[str, tuple[tuple[str, str], ...]]:
    """gold table → the lake tables it reads, from the asset graph's dependencies."""
    out = {}
    for asset in assets:
        for key in asset.keys:
            deps: list[tuple[str, str]] = []
            for dep in asset.specs_by_key[key].deps:
                layer = dep.asset_key.path[0]
                mapping = dep.partition_mapping
                if isinstance(mapping, dg.SpecificPartitionsPartitionMapping):
                    deps += [(layer, p) for p in mapping.partition_keys]
                elif layer == "gold":
                    deps.append(("gold", dep.asset_key.path[-1]))
            if key.path[0] == "gold" and len(key.path) == 2:
                out[key.path[1]] = tuple(sorted(deps))
    return out


def with_reads(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Each gold asset's metadata lists the lake tables it reads (`reads`): the upload
    service picks the gold tables a new file refreshes from it, over Dagster's API."""
    inputs = gold_inputs(assets)

    def spec_with_reads(spec: dg.AssetSpec) -> dg.AssetSpec:
        path = spec.key.path
        tables = inputs.get(path[1]) if path[0] == "gold" and len(path) == 2 else None
        if not tables:
            return spec
        return spec.merge_attributes(
            metadata={READS: ", ".join(f"{layer}.{name}" for layer, name in tables)}
        )

    return [a.map_asset_specs(spec_with_reads) for a in assets]


def model_definitions(
    settings: Settings, taken: Mapping[str, str]
) -> tuple[list[dg.AssetsDefinition], list[dg.ScheduleDefinition]]:
    """An asset (and schedule) per model file in `models_dir`. A file that does not parse,
    reads outside the query layers, has a schedule Dagster refuses or names a table that
    `taken` (gold table → the asset making it) already has becomes an asset that fails with
    the reason; every other asset, sensor and schedule still loads."""
    found, errors = sql_models.load(settings.models_dir, settings.query_layers)
    assets, schedules, broken = [], [], dict(errors)
    for m in found:
        file_name = m.path.name if m.path else f"{m.name}.sql"
        if m.name in taken:
            broken[file_name] = ConfigError(
                f"gold.{m.name} is made by {taken[m.name]}; rename {file_name}.",
                title="Name taken",
            )
            continue
        try:
            asset, schedule = model_asset(m), model_schedule(m)
        except Exception as e:  # noqa: BLE001 -- whatever Dagster refuses breaks this model only
            broken[file_name] = ConfigError(str(e), title="Invalid model")
            continue
        assets.append(asset)
        schedules += [schedule] if schedule else []
    used = {m.name for m in found} | set(taken)
    assets += [broken_model_asset(f, e, used) for f, e in sorted(broken.items())]
    return assets, schedules


@dg.asset(
    key=gold_key("daily_orders"),
    deps=[dg.AssetDep(SILVER, partition_mapping=dg.SpecificPartitionsPartitionMapping(["orders"]))],
    group_name="gold",
    kinds={"python", "duckdb"},
    automation_condition=GOLD_FOLLOWS_INPUTS,
    pool="gold_daily_orders",
    metadata={"path": __file__},  # its source, as SQL models and notebook steps name theirs
)
def daily_orders(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Orders per day and status: a plain Python asset, for logic SQL alone cannot hold."""
    lake = lakehouse.lake
    columns = {c for c, _ in lake.table("silver", "orders").columns}
    if not {"order_date", "status"} <= columns:
        raise dg.Failure(
            description="silver.orders needs order_date and status columns; it has "
            + ", ".join(sorted(columns))
        )
    snap = lake.publish(
        "gold",
        "daily_orders",
        "SELECT CAST(order_date AS DATE) AS day, lower(status) AS status, count(*) AS orders "
        "FROM silver.orders WHERE order_date IS NOT NULL GROUP BY ALL ORDER BY ALL",
        run_id=context.run.run_id,
    )
    return dg.MaterializeResult(metadata=snapshot_metadata(lake, snap))
