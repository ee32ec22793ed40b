"""The one resource: the lake, opened from Settings when a run starts (never at import)."""

import dagster as dg
from pydantic import PrivateAttr

from lakehouse import Lakehouse, Settings


class LakehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """`lakehouse.lake` in an asset: the same storage the app and notebooks use."""

    _lake: Lakehouse | None = PrivateAttr(default=None)

    @property
    def lake(self) -> Lakehouse:
        if self._lake is None:
            self._lake = Lakehouse(Settings())
        return self._lake

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lake is not None:
            self._lake.close()
