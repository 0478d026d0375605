"""Reusable reads for pages and the API."""

from django.db.models import Count, Q

from devices.models import Device


def fleet_summary(user) -> dict:
    counts = Device.objects.for_user(user).aggregate(
        total=Count("id"),
        online=Count("id", filter=Q(status__online=True)),
        low_battery=Count("id", filter=Q(status__battery_pct__lt=20)),
    )
    counts["offline"] = counts["total"] - counts["online"]
    return counts
