from rest_framework import serializers

from devices.api.serializers import UnixTimeField
from devices.models import DeviceGroup, Tag
from enrollment.models import EnrollmentKey, ReenrollRequest
from mdm.api import NameRelatedField


class EnrollmentKeySerializer(serializers.ModelSerializer):
    group = serializers.SlugRelatedField(slug_field="name", read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    state = serializers.SerializerMethodField()
    created_at = UnixTimeField(read_only=True)
    expires_at = UnixTimeField(read_only=True)
    last_used_at = UnixTimeField(read_only=True)
    revoked_at = UnixTimeField(read_only=True)

    class Meta:
        model = EnrollmentKey
        fields = [
            "id", "name", "prefix", "state", "created_at", "created_by", "expires_at", "max_uses", "uses",
            "last_used_at", "revoked_at", "group", "tags",
        ]
        read_only_fields = fields

    def get_state(self, key) -> str:
        from django.utils import timezone

        return key.state(timezone.now())


class EnrollmentKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    max_uses = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False, allow_null=True)
    group = NameRelatedField(slug_field="name", queryset=DeviceGroup.objects.all(), required=False, allow_null=True)
    tags = NameRelatedField(slug_field="name", queryset=Tag.objects.all(), many=True, required=False)


class CreatedEnrollmentKeySerializer(EnrollmentKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown once, never again.")

    class Meta(EnrollmentKeySerializer.Meta):
        fields = [*EnrollmentKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ReenrollRequestSerializer(serializers.ModelSerializer):
    """A re-enrollment request (PROTOCOL.md v1.1): what an admin decides on."""

    device_id = serializers.UUIDField(source="device.id", read_only=True)
    hardware_id = serializers.CharField(source="device.hardware_id", read_only=True)
    state = serializers.SerializerMethodField(help_text="pending, approved, denied, used or expired.")
    created_at = UnixTimeField(read_only=True)
    last_attempt_at = UnixTimeField(read_only=True, help_text="The latest repeat carrying this id.")
    decided_at = UnixTimeField(read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)
    approved_until = serializers.SerializerMethodField()
    used_at = UnixTimeField(read_only=True)

    class Meta:
        model = ReenrollRequest
        fields = [
            "id", "device_id", "hardware_id", "source_ip", "key_name", "model", "created_at", "state",
            "last_attempt_at", "decided_at", "decided_by", "approved_until", "used_at",
        ]
        read_only_fields = fields

    def get_state(self, request) -> str:
        from django.utils import timezone

        return request.effective_state(timezone.now())

    def get_approved_until(self, request) -> int | None:
        until = request.approved_until()
        return int(until.timestamp()) if until is not None else None
