"""Gold: SQL models from `models_dir`, one asset each, plus plain Python assets."""

import hashlib
from collections.abc import Sequence

import dagster as dg

from lakehouse import ConfigError, Settings
from lakehouse import models as sql_models
from lakehouse.models import Model
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.keys import SILVER, dep_on, gold_key
from pipelines.metadata import snapshot_metadata
from pipelines.resources import LakehouseResource


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


def broken_model_asset(file_name: str, error: ConfigError) -> dg.AssetsDefinition:
    """A model file that does not parse stays visible, and says why when materialized."""
    name = file_name.removesuffix(".sql")
    try:
        key = gold_key(name)
    except dg.DagsterInvalidDefinitionError:
        key = gold_key("invalid_model")

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


def model_assets(settings: Settings) -> Sequence[dg.AssetsDefinition]:
    found, errors = sql_models.load(settings.models_dir)
    good = [model_asset(m) for m in found]
    return good + [broken_model_asset(f, e) for f, e in errors.items()]


@dg.asset(
    key=gold_key("daily_orders"),
    deps=[dg.AssetDep(SILVER, partition_mapping=dg.SpecificPartitionsPartitionMapping(["orders"]))],
    group_name="gold",
    kinds={"python", "duckdb"},
    automation_condition=GOLD_FOLLOWS_INPUTS,
    pool="gold_daily_orders",
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
