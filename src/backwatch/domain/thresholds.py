"""The alert rules' thresholds: one declaration of their names, defaults, units and meaning.

The fields with a ``Setting`` in their metadata are the ones a user sets: ``[alerts]`` in
backwatch.toml, and ``[jobs.alerts]`` per job (job_settings.py builds both from here); the
others are fixed tunings of the rules. SPEC §8 states the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

#: the key of a field's metadata that makes it a setting
SETTING = "setting"


@dataclass(frozen=True)
class Setting:
    """What a user-settable threshold means, and the values it accepts."""

    description: str
    unit: str | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def bounds(self) -> dict[str, float]:
        """The accepted range as keyword arguments (``gt``/``ge``/``le``)."""
        return {
            k: v for k, v in (("gt", self.gt), ("ge", self.ge), ("le", self.le)) if v is not None
        }


def _setting(default: float, description: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={SETTING: Setting(description, **kwargs)})


@dataclass(frozen=True)
class Thresholds:
    """Where each rule draws the line between clear and alerting (SPEC §8)."""

    stuck_minutes: float = _setting(
        15,
        "A run is stuck after max(this, 3 × the job's median duration), or its timeout.",
        unit="minutes",
        gt=0,
    )
    regression_percent: float = _setting(
        20,
        "duration_regression fires when the median of the last 3 runs is this much longer "
        "than the median of the 20 before.",
        unit="%",
        gt=0,
    )
    error_rate_percent: float = _setting(
        5, "error_rate fires when more of the last 7 days' runs failed.", unit="%", gt=0
    )
    disk_warning_percent: float = _setting(
        85, "disk_space warns when a disk is fuller than this.", unit="%", gt=0, le=100
    )
    disk_critical_percent: float = _setting(
        95, "disk_space is critical when a disk is fuller than this.", unit="%", gt=0, le=100
    )
    alert_after_failures: int = _setting(
        1, "The failed rule waits for this many failures in a row.", unit="runs", ge=1
    )
    # fixed tunings, not settings
    empty_ratio: float = 0.10
    anomaly_mads: float = 5
    forecast_days: float = 14
    error_rate_min_runs: int = 5
    #: a disk forecast needs samples spanning this long, and at least this many of them:
    #: two samples minutes apart make any growth look like "full tomorrow"
    forecast_min_span_s: float = 86400.0
    forecast_min_samples: int = 5
    #: a disk with less free than this is critical whatever its share (0: no floor); set
    #: for backwatch's own data directory (``[alerts] data_min_free_mb``)
    disk_min_free_bytes: float = 0.0
    #: ``store_unavailable`` fires after this many refused writes
    refused_writes: int = 3


#: the thresholds a user sets, in declaration order: name → what it means
SETTINGS: dict[str, Setting] = {
    f.name: f.metadata[SETTING] for f in fields(Thresholds) if SETTING in f.metadata
}
