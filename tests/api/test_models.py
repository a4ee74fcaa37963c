"""The response model of KPIs carries exactly the engine's fields (KPI.md names)."""

from __future__ import annotations

import dataclasses

from api.models import KpisOut
from kpi import Kpis


def test_kpis_out_has_every_kpi_field_and_no_other() -> None:
    assert list(KpisOut.model_fields) == [f.name for f in dataclasses.fields(Kpis)]
