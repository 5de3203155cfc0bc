"""The pages' one format for times (docs/dashboard.md): what the server writes before the
browser puts it in the viewer's zone."""

from __future__ import annotations

from backwatch.web.pages.render import stamp, timed


def test_a_stamp_is_date_24_hour_time_and_zone() -> None:
    assert stamp(1_765_083_620.5) == "2025-12-07 05:00 UTC"
    assert stamp("2026-12-07T03:00:20Z") == "2026-12-07 03:00 UTC"
    assert stamp(None) == "–"  # unknown stays unknown, never the epoch
    assert stamp(float("nan")) == "–"
    assert stamp("not a time") == "not a time"


def test_times_inside_a_message_become_time_elements_and_the_rest_is_escaped() -> None:
    html = str(
        timed(
            "<b>db</b>: the run of 2026-12-07T03:00:20Z failed; last good 2026-12-06T03:00:00.250Z"
        )
    )
    assert html.startswith("&lt;b&gt;db&lt;/b&gt;: the run of ")
    assert (
        '<time datetime="2026-12-07T03:00:20Z" data-local title="2026-12-07T03:00:20Z">'
        "2026-12-07 03:00 UTC</time> failed" in html
    )
    assert '<time datetime="2026-12-06T03:00:00.250Z"' in html
    assert str(timed(None)) == ""
    assert str(timed("no time here & there")) == "no time here &amp; there"
