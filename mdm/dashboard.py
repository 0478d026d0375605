"""The dashboard's figures (templates/dashboard.html and its partials in templates/dashboard/).
Project wiring: it reads from every app below, each read one SQL aggregate or one short list, so
the page costs the same number of queries for 3 devices as for 20,000
(mdm/tests/test_dashboard.py holds it to a bound)."""

from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone
from django.utils.formats import number_format

from commands.selectors import daily_results
from devices import fleet_stats
from devices.compliance import compliance_counts
from devices.models import Device
from devices.selectors import fleet_summary
from mdm import activity, dashboard_charts
from mdm.alerts.filters import tab_q
from mdm.alerts.selectors import alerts_for, open_count

# The online chart's periods: (words, span, one point per hour instead of per sample).
PERIODS = {"24h": ("24 hours", timedelta(hours=24), False), "7d": ("7 days", timedelta(days=7), True),
           "30d": ("30 days", timedelta(days=30), True)}
COMMAND_DAYS = 7
COMMANDS_CACHE_S = 60
OPEN_ALERTS_SHOWN = 5


def period_of(value) -> str:
    return value if value in PERIODS else "24h"


def page_context(user, *, period: str, now: datetime) -> dict:
    summary = fleet_summary(user)
    context = {"section": "dashboard", "summary": summary, "first_run": not summary["total"]}
    if user.is_operator_role:  # the feed names people, like the audit log it reads (viewers see neither)
        context["activity"] = activity.recent(now=now)
    if not summary["total"]:
        return context
    devices = Device.objects.for_user(user)
    return {
        **context,
        **online_context(period=period, now=now, summary=summary),
        **alerts_context(user),
        **commands_context(),
        "compliance": compliance_counts(devices),
        "spreads": fleet_stats.spreads(devices),
    }


def online_context(*, period: str, now: datetime, summary: dict) -> dict:
    words, span, hourly = PERIODS[period]
    start, step = now - span, timedelta(hours=1) if hourly else fleet_stats.SAMPLE_EVERY
    samples = fleet_stats.online_series(start=start, end=now, hourly=hourly)
    points = [*samples, fleet_stats.Point(now, summary["online"], summary["total"])]  # the present: the cards' counts
    low, high = min(points, key=lambda p: p.online), max(points, key=lambda p: p.online)
    fmt = "%H:%M" if not hourly else "%Y-%m-%d %H:00"
    text = (f"Devices online over the last {words}: {summary['online']} of {summary['total']} now; "
            f"lowest {low.online} ({low.at:{fmt}} UTC), highest {high.online} ({high.at:{fmt}} UTC).")
    return {
        "period": period,
        "periods": [(key, value[0]) for key, value in PERIODS.items()],
        "online_text": text,
        "online_chart": dashboard_charts.online_chart(points, start=start, end=now, step=step, label=text),
        "online_samples": len(samples),
    }


def alerts_context(user) -> dict:
    shown = list(alerts_for(user).filter(tab_q("open"))[:OPEN_ALERTS_SHOWN])
    return {"open_alerts": shown, "open_total": open_count() if len(shown) == OPEN_ALERTS_SHOWN else len(shown)}


def commands_context() -> dict:
    # Shared by every console for a minute: counting a week's deliveries reads each of them
    # (commands.selectors.daily_results), and a figure over days need not be fresher.
    key = f"dashboard:commands:{COMMAND_DAYS}:{timezone.localdate():%Y-%m-%d}"
    days = cache.get_or_set(key, lambda: daily_results(days=COMMAND_DAYS), COMMANDS_CACHE_S)
    sums = {k: sum(getattr(d, k) for d in days) for k in ("commands", "succeeded", "failed", "expired", "pending", "finished")}
    rate = round(100 * sums["succeeded"] / sums["finished"]) if sums["finished"] else None
    text = f"Commands issued over the last {COMMAND_DAYS} days: {number_format(sums['commands'], force_grouping=True)}"
    if rate is not None:
        text += (f"; {rate}% of the {number_format(sums['finished'], force_grouping=True)} finished deliveries succeeded"
                 f" ({sums['failed']} failed, {sums['expired']} expired)")
    if sums["pending"]:
        text += f"; {sums['pending']} not finished yet"
    return {"command_days": days, "command_sums": sums, "success_rate": rate, "commands_text": text + ".",
            "commands_chart": dashboard_charts.commands_chart(days, label=text + ".")}
