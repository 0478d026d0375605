import pytest


@pytest.fixture(autouse=True)
def _eager(eager_celery):
    """Sending (e-mail, webhooks) is queued on Celery; run it in the test."""


@pytest.fixture(autouse=True)
def _seeded_rules(request):
    """The seeded rules, as a new installation has them: a live (transactional) test earlier in
    the run flushes what the migrations seeded. Seeding is idempotent (by seed_key)."""
    if "db" not in request.fixturenames and "transactional_db" not in request.fixturenames \
            and not request.node.get_closest_marker("django_db"):
        return
    from mdm.alerts.models import AlertRule
    from mdm.alerts.seeds import seed

    request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
    seed(AlertRule)


@pytest.fixture
def offline_alerts(db):
    """Three devices of group Lobby offline for 11 minutes and the seeded offline rule (alone
    enabled) evaluated: three firing alerts, newest first."""
    from datetime import timedelta

    from django.utils import timezone

    from devices.models import DeviceStatus
    from devices.tests.factories import DeviceFactory, DeviceGroupFactory
    from mdm.alerts import services
    from mdm.alerts.models import Alert, AlertRule

    AlertRule.objects.exclude(kind="device_offline").update(enabled=False)
    lobby = DeviceGroupFactory(name="Lobby")
    devices = [DeviceFactory(group=lobby, alias=f"kiosk-{i}") for i in range(3)]
    DeviceStatus.objects.filter(device__in=devices).update(online=False, last_seen=timezone.now() - timedelta(minutes=11))
    services.run_cycle()
    return list(Alert.objects.order_by("subject_label"))
