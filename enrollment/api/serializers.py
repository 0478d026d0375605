from rest_framework import serializers

from devices.api.serializers import UnixTimeField
from devices.models import DeviceGroup, Tag
from enrollment.models import EnrollmentKey


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
    group = serializers.SlugRelatedField(slug_field="name", queryset=DeviceGroup.objects.all(), required=False, allow_null=True)
    tags = serializers.SlugRelatedField(slug_field="name", queryset=Tag.objects.all(), many=True, required=False)


class CreatedEnrollmentKeySerializer(EnrollmentKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown once, never again.")

    class Meta(EnrollmentKeySerializer.Meta):
        fields = [*EnrollmentKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
