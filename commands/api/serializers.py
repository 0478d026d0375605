from rest_framework import serializers

from commands.models import Command, CommandType, Delivery, Preset, ShellAllowRule, WifiConfig
from devices.models import DeviceGroup
from mdm.api import NameRelatedField
from mdm.audit import MASK


class CommandCreateSerializer(serializers.Serializer):
    """Shape only; the meaning (types, params, allowlist, targets) is checked by the services."""

    type = serializers.ChoiceField(choices=CommandType.choices, required=False)
    preset = serializers.CharField(required=False, help_text="Preset name: supplies type and params.")
    preset_version = serializers.IntegerField(required=False, min_value=1)
    params = serializers.JSONField(required=False, default=dict)
    target = serializers.JSONField(
        help_text='One of {"device_ids": [...]}, {"group": "..."}, {"tags": [...]}, {"filter": {...}}, {"all": true}.'
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    expires_in_s = serializers.IntegerField(required=False, min_value=1, max_value=2_592_000)

    def validate(self, attrs):
        if not attrs.get("type") and not attrs.get("preset"):
            raise serializers.ValidationError({"type": ["Give a type or a preset."]})
        return attrs


class CommandCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    target_count = serializers.IntegerField()


class DryRunSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    device_ids = serializers.ListField(child=serializers.UUIDField())
    target_count = serializers.IntegerField()


class DeliverySerializer(serializers.ModelSerializer):
    device_id = serializers.UUIDField(source="device.id", read_only=True)
    device_name = serializers.CharField(source="device.display_name", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "device_id", "device_name", "seq", "state", "queued_at", "sent_at", "received_at", "running_at",
            "finished_at", "exit_code", "output", "output_truncated", "error", "reason", "attempts", "channel",
            "push_status",
        ]


class CommandSerializer(serializers.ModelSerializer):
    params = serializers.SerializerMethodField()
    issuer = serializers.CharField(source="issuer_label", read_only=True)
    preset = serializers.CharField(source="preset.name", default=None, read_only=True)
    counters = serializers.SerializerMethodField()

    class Meta:
        model = Command
        fields = [
            "id", "type", "params", "is_secret", "target", "target_count", "issuer", "created_at", "expires_at",
            "cancelled_at", "preset", "preset_version", "counters",
        ]

    def get_params(self, obj) -> dict:
        return obj.masked_params()

    def get_counters(self, obj) -> dict:
        return getattr(obj, "counters", None) or {}


class CommandDetailSerializer(CommandSerializer):
    deliveries = serializers.SerializerMethodField()

    class Meta(CommandSerializer.Meta):
        fields = CommandSerializer.Meta.fields + ["deliveries"]

    def get_deliveries(self, obj) -> list[dict]:
        return DeliverySerializer(obj.delivery_list, many=True).data


class PresetSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    type = serializers.ChoiceField(choices=CommandType.choices)
    params = serializers.JSONField(default=dict)

    class Meta:
        model = Preset
        fields = ["id", "name", "version", "type", "params", "description", "category", "is_latest", "archived",
                  "created_by", "created_at"]
        read_only_fields = ["id", "version", "is_latest", "archived", "created_by", "created_at"]
        extra_kwargs = {"name": {"validators": []}}


class ShellAllowRuleSerializer(serializers.ModelSerializer):
    argv_prefix = serializers.JSONField(help_text='An argv prefix, e.g. ["pm", "list", "packages"].')

    class Meta:
        model = ShellAllowRule
        fields = ["id", "argv_prefix", "description", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class WifiConfigSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=False, required=False, allow_blank=True, allow_null=True, max_length=63,
        help_text='Write-only in effect: answers show "***" when one is set. Omit or null to keep it.',
    )
    group = NameRelatedField(
        slug_field="name", queryset=DeviceGroup.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = WifiConfig
        fields = ["id", "name", "ssid", "security", "password", "hidden", "group", "created_at", "updated_at",
                  "last_pushed_at"]
        read_only_fields = ["id", "created_at", "updated_at", "last_pushed_at"]
        extra_kwargs = {"name": {"validators": []}}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["password"] = MASK if instance.has_password else ""
        return data


class WifiPushSerializer(serializers.Serializer):
    expires_in_s = serializers.IntegerField(required=False, min_value=1, max_value=2_592_000)
