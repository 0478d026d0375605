"""Reusable reads for pages and the API."""

from django.db.models import Count, Q

from devices.models import Device

LOW_BATTERY_PCT = 20


def _summary(queryset) -> dict:
    counts = queryset.aggregate(
        total=Count("id"),
        online=Count("id", filter=Q(status__online=True)),
        low_battery=Count("id", filter=Q(status__battery_pct__lt=LOW_BATTERY_PCT)),
    )
    counts["offline"] = counts["total"] - counts["online"]
    return counts


def fleet_summary(user) -> dict:
    return _summary(Device.objects.for_user(user))


def fleet_summary_for_all() -> dict:
    """The same counts for broadcasts (every console user sees the whole fleet today)."""
    return _summary(Device.objects.active())
