from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices import telemetry
from devices.models import Device, DeviceGroup, DevicePolicyState, DeviceStatus, HeartbeatSample, InstalledApp, Tag
from mdm.api import NameRelatedField

# The heartbeat fields as last accepted, under their heartbeat names (PROTOCOL.md).
STATUS_FIELDS = telemetry.STATUS_COLUMNS


def unix(value):
    return int(value.timestamp()) if value is not None else None


@extend_schema_field(OpenApiTypes.INT)
class UnixTimeField(serializers.Field):
    """Times are integer Unix seconds (PROTOCOL.md)."""

    def to_representation(self, value):
        return unix(value)


class DeviceSerializer(serializers.ModelSerializer):
    device_id = serializers.UUIDField(source="id", read_only=True)
    group = serializers.SlugRelatedField(slug_field="name", read_only=True)
    tags = serializers.SerializerMethodField()
    enrolled_at = UnixTimeField(read_only=True)
    last_enrolled_at = UnixTimeField(read_only=True)
    deleted_at = UnixTimeField(read_only=True)
    status = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "device_id",
            "hardware_id",
            "serial",
            "model",
            "manufacturer",
            "android_version",
            "sdk_int",
            "agent_version",
            "alias",
            "display_name",
            "group",
            "tags",
            "enrolled_at",
            "last_enrolled_at",
            "enrollment_count",
            "enrolled_with",
            "deleted_at",
            "status",
            "policy",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, device) -> list[str]:
        return sorted(t.name for t in device.tags.all())

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_policy(self, device) -> dict | None:
        """PROTOCOL.md v1.1: {"id", "version", "applied_version", "compliant", "items"} or null
        (no policy). `items` are the per-item states of the device's last report."""
        try:
            state = device.policy_state
        except DevicePolicyState.DoesNotExist:
            return None
        if not state.version:
            return None
        return {"id": str(state.policy_id) if state.policy_id else None, "version": state.version,
                "applied_version": state.applied_version, "compliant": state.compliant,
                "items": {name: {"state": v.get("state"), "reason": v.get("reason")} for name, v in (state.items or {}).items()}}

    @extend_schema_field(serializers.DictField())
    def get_status(self, device) -> dict:
        status = getattr(device, "status", None) or DeviceStatus(device=device)
        data = {name: getattr(status, name) for name in STATUS_FIELDS}
        data.update(
            fcm_token=device.fcm_token or None,
            last_seen=unix(status.last_seen),
            online=status.online,
            clock_drift_s=status.clock_drift_s,
            bad_envelopes_total=status.bad_envelopes_total,
            last_bad_envelope_at=unix(status.last_bad_envelope_at),
            inventory_at=unix(status.inventory_at),
        )
        return data


class DeviceUpdateSerializer(serializers.Serializer):
    alias = serializers.CharField(max_length=128, allow_blank=True, required=False)
    group = NameRelatedField(
        slug_field="name", queryset=DeviceGroup.objects.all(), allow_null=True, required=False
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50)


class BulkDeleteSerializer(serializers.Serializer):
    device_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=10000)


class GroupSerializer(serializers.ModelSerializer):
    device_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = DeviceGroup
        fields = ["id", "name", "description", "created_at", "device_count"]
        read_only_fields = ["id", "created_at", "device_count"]


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["name"]


class InstalledAppSerializer(serializers.ModelSerializer):
    class Meta:
        model = InstalledApp
        fields = ["package", "version_name", "version_code", "system", "enabled"]


class HeartbeatSampleSerializer(serializers.ModelSerializer):
    at = UnixTimeField()

    class Meta:
        model = HeartbeatSample
        fields = ["at", "battery_pct", "charging", "battery_temp_c", "mem_avail_mb", "storage_free_mb", "network_type", "wifi_rssi"]


class BulkDeleteResultSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.UUIDField())
