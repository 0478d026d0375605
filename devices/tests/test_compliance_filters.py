"""Compliance in the device list's one FilterSet (API list, console, command targeting) and the
dashboard's counts (devices.compliance): `compliant`, `patch_older_than_days`, `os_version`."""

from datetime import timedelta
import uuid

import pytest
from django.utils import timezone

from devices import compliance
from devices.filters import DeviceFilter
from devices.models import Device, DeviceStatus
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
POLICY = uuid.uuid4()


def device(*, version=0, applied=None, all_applied=False, patch_days=None, os_version=""):
    d = DeviceFactory()
    DeviceStatus.objects.filter(device=d).update(
        os_version=os_version,
        security_patch=(timezone.localdate() - timedelta(days=patch_days)) if patch_days is not None else None)
    if version:
        compliance.set_resolved({d.pk: (POLICY, version)})
    if applied is not None:
        compliance.record_report(device_id=d.pk, version=applied, items={}, all_applied=all_applied, now=timezone.now())
    return d


def ids(**params):
    fs = DeviceFilter(data=params, queryset=Device.objects.active())
    assert fs.is_valid(), fs.errors
    return {d.pk for d in fs.qs}


def test_compliant_means_the_current_version_reported_with_every_item_applied():
    good = device(version=7, applied=7, all_applied=True)
    failing = device(version=7, applied=7, all_applied=False)
    behind = device(version=9, applied=7, all_applied=True)
    silent = device(version=7)
    none = device()
    assert ids(compliant="true") == {good.pk}
    assert ids(compliant="false") == {failing.pk, behind.pk, silent.pk}
    assert none.pk not in ids(compliant="false")
    assert compliance.compliance_counts() == {"compliant": 1, "non_compliant": 3, "no_policy": 1}


def test_patch_older_than_days_and_os_version():
    old = device(patch_days=120, os_version="13")
    fresh = device(patch_days=10, os_version="14")
    unknown = device()
    assert ids(patch_older_than_days=90) == {old.pk}
    assert ids(os_version="14") == {fresh.pk}
    assert unknown.pk not in ids(patch_older_than_days=0)


@pytest.mark.parametrize("params", [{"patch_older_than_days": "-1"}, {"patch_older_than_days": "1e20"}, {"compliant": "perhaps"}])
def test_bad_values_are_a_400_from_the_api(admin_api, params):
    assert admin_api.get("/api/v1/devices", params).status_code == 400


def test_the_api_list_and_command_targeting_share_the_filters(admin_api, operator_api):
    good = device(version=3, applied=3, all_applied=True)
    bad = device(version=3, applied=2, all_applied=True)
    listed = admin_api.get("/api/v1/devices", {"compliant": "false"}).json()["results"]
    assert [r["device_id"] for r in listed] == [str(bad.pk)]
    dry = operator_api.post("/api/v1/commands", {"type": "ping", "target": {"filter": {"compliant": False}}, "dry_run": True},
                            format="json")
    assert dry.status_code == 200 and dry.json()["device_ids"] == [str(bad.pk)]
    assert str(good.pk) not in dry.json()["device_ids"]
