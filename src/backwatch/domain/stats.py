"""Small robust statistics for baselines: median, MAD, a least-squares line."""

from __future__ import annotations

from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    data = sorted(values)
    n = len(data)
    if n == 0:
        return None
    mid = n // 2
    if n % 2:
        return float(data[mid])
    return (data[mid - 1] + data[mid]) / 2.0


def mad(values: Sequence[float]) -> float | None:
    """Median absolute deviation from the median."""
    center = median(values)
    if center is None:
        return None
    return median([abs(v - center) for v in values])


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line through ``points``; None if undefined."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mean_x) ** 2 for p in points)
    if sxx == 0:
        return None
    sxy = sum((p[0] - mean_x) * (p[1] - mean_y) for p in points)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x
