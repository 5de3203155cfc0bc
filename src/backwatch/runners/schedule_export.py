"""A job's schedule as systemd units or a crontab line (``backwatch schedule export``)."""

from __future__ import annotations

import shlex

from backwatch.domain.schedule import parse_schedule
from backwatch.errors import InvalidInput
from backwatch.settings import JobSettings

_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_NAMED = {
    "@hourly": "hourly",
    "@daily": "daily",
    "@midnight": "daily",
    "@weekly": "weekly",
    "@monthly": "monthly",
    "@yearly": "yearly",
    "@annually": "yearly",
}
_CRON_NAMED = {"@midnight": "@daily", "@annually": "@yearly"}


def _need_schedule(job: JobSettings) -> str:
    if not job.schedule:
        raise InvalidInput(f'job {job.id!r} has no schedule; add schedule = "0 2 * * *" or "24h"')
    return job.schedule


def _field(value: str, *, start: int, what: str, days: bool = False) -> str:
    """One cron field → systemd's calendar syntax (lists, ranges a..b, steps a/n)."""
    if value == "*":
        return "*"
    parts = []
    for item in value.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            base = str(start)
        if days:
            if step:
                raise InvalidInput(f"cannot express the day-of-week step {value!r} in systemd")
            ends = [_day(p) for p in base.split("-")]
            parts.append("..".join(ends))
            continue
        if "-" in base:
            if step:
                raise InvalidInput(f"cannot express the stepped range {item!r} ({what}) in systemd")
            a, b = base.split("-", 1)
            parts.append(f"{int(a):02d}..{int(b):02d}")
        elif step:
            parts.append(f"{int(base):02d}/{int(step)}")
        else:
            parts.append(f"{int(base):02d}")
    return ",".join(parts)


def _day(text: str) -> str:
    if text.isdigit():
        return _DAYS[int(text) % 8]
    return text[:3].capitalize()


def on_calendar(expression: str, timezone: str) -> str:
    """A cron expression → a systemd ``OnCalendar=`` value in the job's time zone."""
    if expression.startswith("@"):
        named = _NAMED.get(expression)
        if named is None:
            raise InvalidInput(f"cannot express {expression!r} as a systemd calendar")
        return f"{named} {timezone}" if timezone != "UTC" else named
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(f"only 5-field cron expressions can be exported, not {expression!r}")
    minute, hour, dom, month, dow = fields
    if dom != "*" and dow != "*":
        raise InvalidInput(
            f"{expression!r} restricts both day of month and day of week (cron runs on either, "
            "systemd only on both); split it into two jobs"
        )
    day_part = _field(dow, start=0, what="day of week", days=True) + " " if dow != "*" else ""
    date = f"*-{_field(month, start=1, what='month')}-{_field(dom, start=1, what='day')}"
    time = f"{_field(hour, start=0, what='hour')}:{_field(minute, start=0, what='minute')}:00"
    return f"{day_part}{date} {time} {timezone}"


def systemd_units(job: JobSettings, command: list[str]) -> dict[str, str]:
    """``backwatch-<job>.service`` (oneshot ``backwatch run``) and ``.timer``."""
    sched = parse_schedule(_need_schedule(job), job.timezone)
    name = f"backwatch-{job.id}"
    description = job.description or f"backwatch job {job.id}"
    service = (
        "[Unit]\n"
        f"Description={description}\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={shlex.join(command)}\n"
        "Nice=10\n"
        "IOSchedulingClass=best-effort\n"
        "IOSchedulingPriority=7\n"
        # exit 3 is a warning (the backup was saved); 75 means another run was going
        "SuccessExitStatus=3 75\n"
    )
    if sched.period_s is not None:
        timing = f"OnBootSec=5min\nOnUnitActiveSec={int(sched.period_s)}s\n"
    else:
        timing = f"OnCalendar={on_calendar(sched.expression, job.timezone)}\nPersistent=true\n"
    timer = (
        "[Unit]\n"
        f"Description=Run {name} on its schedule ({job.schedule})\n"
        "\n"
        "[Timer]\n"
        f"{timing}"
        "RandomizedDelaySec=1min\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def cron_expression(job: JobSettings) -> str:
    sched = parse_schedule(_need_schedule(job), job.timezone)
    if sched.period_s is None:
        return _CRON_NAMED.get(sched.expression, sched.expression)
    p = int(sched.period_s)
    if p % 60 == 0 and p < 3600 and 3600 % p == 0:
        return f"*/{p // 60} * * * *"
    if p % 3600 == 0 and p < 86400 and 86400 % p == 0:
        return f"0 */{p // 3600} * * *" if p > 3600 else "0 * * * *"
    if p == 86400:
        return "0 0 * * *"
    if p == 7 * 86400:
        return "0 0 * * 0"
    raise InvalidInput(
        f"the period {job.schedule!r} has no cron equivalent; use a cron expression or --systemd"
    )


def crontab(job: JobSettings, command: list[str]) -> str:
    """A crontab line (with ``CRON_TZ`` for the job's time zone)."""
    expression = cron_expression(job)
    return (
        f"# backwatch job {job.id}: {job.description or job.schedule}\n"
        f"# (CRON_TZ is honoured by cronie and systemd-cron; Debian's cron uses the host's zone)\n"
        f"CRON_TZ={job.timezone}\n"
        f"{expression} {shlex.join(command)} >/dev/null\n"
    )
