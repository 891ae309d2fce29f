"""Lidar profile times: decimal day of year (+ the year from the file name) to epoch seconds, UTC."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from cloudml.errors import CloudMLError

# The lidar file name ends in its date, e.g. CPL_L2_V1-02_01kmLay_259015_10feb25.hdf5 -> 2025.
DATE_AT_END = re.compile(r"(\d{2})(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(\d{2})$", re.IGNORECASE)
SECONDS_PER_DAY = 86400.0


def year_from_name(path: Path, dataset: str, year: Optional[int] = None) -> int:
    """The year of the profiles: `year` if given, else 2000 + the last two digits of the file name's date."""
    if year is not None:
        return year
    match = DATE_AT_END.search(path.stem)
    if not match:
        raise CloudMLError(
            f"{path}: the file name does not end in a date like 10feb25, expected one "
            f"(the year of '{dataset}' comes from it; --set lidar.year=YYYY to give it)"
        )
    return 2000 + int(match.group(3))


def unroll_midnight(day: np.ndarray) -> np.ndarray:
    """Decimal days made continuous across midnight.

    Rule: a fall of more than half a day between consecutive profiles is a rollover that the
    integer day did not follow (the fraction wrapped to ~0), or New Year (day 365/366 -> 1);
    the whole days lost in the fall are added back from that profile on.
    """
    steps = np.diff(day)
    lost = np.where(steps < -0.5, np.round(-steps), 0.0)
    return day + np.concatenate([[0.0], np.cumsum(lost)])


def to_epoch(day: np.ndarray, year: int) -> np.ndarray:
    """Epoch seconds of decimal days of `year` (day 1.0 = 1 January 00:00 UTC)."""
    new_year = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
    return new_year + (unroll_midnight(np.asarray(day, dtype=np.float64)) - 1.0) * SECONDS_PER_DAY
