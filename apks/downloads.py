"""Who may download which release (PROTOCOL.md: only a device with a pending install_apk for
that APK, or whose policy requires it)."""

from django.utils import timezone

from apks.models import Release
from commands.models import NON_FINAL_STATES, CommandType, Delivery
from commands.policies import services as policy_services


def has_open_install(*, device_id, release: Release, now=None) -> bool:
    """An install_apk for this release reached the device and is not final yet: queued or sent
    (the device has not said it has it), received or running (it is downloading), and not
    past its expiry."""
    return Delivery.objects.filter(
        device_id=device_id,
        state__in=NON_FINAL_STATES,
        expires_at__gt=now or timezone.now(),
        command__type=CommandType.INSTALL_APK,
        command__params__apk_id=str(release.pk),
    ).exists()


def policy_requires(*, device_id, release: Release) -> bool:
    """True when the device's current policy lists this release under `apps.required`."""
    return policy_services.policy_requires_release(device_id=device_id, apk_id=release.pk)


def may_download(*, device_id, release: Release, now=None) -> bool:
    return has_open_install(device_id=device_id, release=release, now=now) or policy_requires(device_id=device_id, release=release)


def releases_with_open_installs():
    """Ids (str) of releases an install_apk still waits for: never purged by retention."""
    return set(
        Delivery.objects.filter(state__in=NON_FINAL_STATES, command__type=CommandType.INSTALL_APK)
        .values_list("command__params__apk_id", flat=True)
        .distinct()
    )
