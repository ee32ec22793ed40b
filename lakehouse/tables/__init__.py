"""The lake's tables: bronze batches, snapshots of silver and gold, the catalog and lineage."""
