"""The report as numbers: rollup rows in, per-zone figures out. Pure (no I/O, `now` given),
so every rule (closed days, "no data", estimates, comparisons, DST days) is tested on its
own; `source.py` does the reading and the renderers only format. This package's names are
its API; its modules hold the rows (`rows`), the figures (`figures`), the day rules
(`days`), the comparisons (`compare`), the hourly profile (`profile`), the doors
(`doors`), the building (`build`) and the annual statistics (`statistics`).

Words used throughout, as docs/reports.md explains them to readers:

- closed: the site file's opening hours say the zone is closed that day. A closed day
  shows as "closed", not 0, unless visits were counted: then the count is shown and the
  day flagged (`closed_with_visits`).
- no data: an open day without a rollup row (nothing was computed for it): not 0.
- estimated: the figure includes at least one hour in which an agent serving the zone's
  doors was offline or had a fault, so the count may be low.
"""

from .build import build_report, select_zones
from .figures import (
    STATUS_TEXT,
    WEEKDAYS,
    Comparison,
    DayFigure,
    DayStatus,
    DoorFigure,
    Doors,
    DoorStatus,
    MonthFigure,
    ProfileCell,
    Report,
    ReportError,
    UnknownZoneError,
    ZoneReport,
    ZoneStatus,
)
from .rows import DailyRow, DoorCount, HourlyRow
from .statistics import Statistics, StatisticsUnit, build_statistics

__all__ = [
    "STATUS_TEXT",
    "WEEKDAYS",
    "Comparison",
    "DailyRow",
    "DayFigure",
    "DayStatus",
    "DoorCount",
    "DoorFigure",
    "DoorStatus",
    "Doors",
    "HourlyRow",
    "MonthFigure",
    "ProfileCell",
    "Report",
    "ReportError",
    "Statistics",
    "StatisticsUnit",
    "UnknownZoneError",
    "ZoneReport",
    "ZoneStatus",
    "build_report",
    "build_statistics",
    "select_zones",
]
