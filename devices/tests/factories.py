"""Device personas for tests (used by the root conftest.py and by other apps' tests)."""

from dataclasses import dataclass

import factory
from django.utils import timezone

from devices import tokens
from devices.models import Device, DeviceGroup, DeviceStatus


class DeviceGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeviceGroup
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device
        skip_postgeneration_save = True

    hardware_id = factory.Sequence(lambda n: f"HW{n:08d}")
    serial = factory.LazyAttribute(lambda d: d.hardware_id)
    model = "Pixel 7"
    manufacturer = "Google"
    android_version = "14"
    sdk_int = 34
    agent_version = "1.0.0"

    @factory.post_generation
    def status(obj, create, extracted, **kwargs):
        if create:
            DeviceStatus.objects.get_or_create(device=obj, defaults=kwargs)


@dataclass
class EnrolledDevice:
    device: Device
    token: str

    @property
    def auth(self) -> dict:
        """Headers for Django's test client."""
        return {"HTTP_AUTHORIZATION": f"Device {self.token}"}

    @property
    def headers(self) -> dict:
        """Headers for httpx / a live server."""
        return {"Authorization": f"Device {self.token}"}


def enroll_for_test(device: Device | None = None, **device_fields) -> EnrolledDevice:
    """A device holding a valid token, as if it had enrolled (no key use, no command keys)."""
    device = device or DeviceFactory(**device_fields)
    issued = tokens.issue()
    device.token_id, device.token_hash, device.token_issued_at = issued.token_id, issued.token_hash, timezone.now()
    device.save(update_fields=["token_id", "token_hash", "token_issued_at"])
    return EnrolledDevice(device=device, token=issued.token)
