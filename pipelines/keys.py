"""Asset keys and partitions shared by assets and sensors.

Bronze and silver are one asset each, partitioned by dataset (dynamic partitions): a dataset
that did not exist when the code loaded becomes a partition the moment the sensor sees it,
with no reload. Gold assets are one per model, keyed `gold/<name>`.
"""

import dagster as dg

datasets = dg.DynamicPartitionsDefinition(name="datasets")

BRONZE = dg.AssetKey(["bronze", "datasets"])
SILVER = dg.AssetKey(["silver", "datasets"])
READS = "reads"  # gold assets' metadata: the lake tables they read (lakehouse.steps.dagster)


def gold_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", name])


def dep_on(tables: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[dg.AssetDep]:
    """Asset deps for the lake tables a model reads: bronze/silver tables map to partitions."""
    by_layer: dict[str, list[str]] = {}
    for layer, name in tables:
        by_layer.setdefault(layer, []).append(name)
    deps = [
        dg.AssetDep(key, partition_mapping=dg.SpecificPartitionsPartitionMapping(sorted(names)))
        for key, names in ((BRONZE, by_layer.get("bronze")), (SILVER, by_layer.get("silver")))
        if names
    ]
    deps += [dg.AssetDep(gold_key(n)) for n in sorted(by_layer.get("gold", []))]
    return deps
