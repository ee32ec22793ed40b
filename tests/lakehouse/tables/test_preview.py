"""`Lakehouse.preview`: the head of a table as readers see it, in every layer."""

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, TableNotFoundError


def csv(lake: Lakehouse, tmp_path, name: str, text: str, **kw: object) -> None:
    path = tmp_path / name
    path.write_text(text)
    lake.ingest(path, **kw)  # type: ignore[arg-type]


def test_bronze_preview_is_capped_and_has_the_common_schema(lake: Lakehouse, tmp_path) -> None:
    csv(lake, tmp_path, "orders.csv", "id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(50)))
    csv(lake, tmp_path, "more.csv", "id,amount,note\n99,1.5,late\n", dataset="orders")
    head = lake.preview("bronze", "orders", rows=20)
    assert head.num_rows == 20
    assert head.column_names == ["id", "amount", "note"]  # the later batch's column is there
    assert lake.preview("bronze", "orders", rows=500).num_rows == 51


def test_preview_of_a_snapshot_table(lake: Lakehouse) -> None:
    lake.publish("gold", "numbers", pa.table({"n": list(range(30))}))
    assert lake.preview("gold", "numbers", rows=5).num_rows == 5
    assert lake.preview("gold", "numbers", rows=0).num_rows == 0


def test_preview_of_a_missing_table_says_so(lake: Lakehouse) -> None:
    with pytest.raises(TableNotFoundError):
        lake.preview("bronze", "nothing_here")
