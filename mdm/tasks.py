from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from mdm import services


@shared_task
def prune_audit(days: int = 365) -> int:
    return services.prune_audit(older_than=timezone.now() - timedelta(days=days))
