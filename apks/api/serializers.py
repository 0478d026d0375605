from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apks.models import Release


class ReleaseSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This release in the admin API.")
    uploaded_by = serializers.CharField(source="uploaded_by_label", read_only=True)

    class Meta:
        model = Release
        fields = ["id", "package", "version_code", "version_name", "label", "sha256", "signer_sha256", "size", "min_sdk",
                  "target_sdk", "abis", "debuggable", "channel", "notes", "filename", "signing_schemes", "uploaded_by",
                  "uploaded_via", "agent", "created_at", "url"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_url(self, release) -> str:
        return f"/api/v1/apks/{release.id}"


class DeploySerializer(serializers.Serializer):
    target = serializers.JSONField(help_text='As for commands: exactly one of device_ids, group, tags, filter, all.')
    versions = serializers.JSONField(required=False, help_text='Installed states that get the release, of "missing", '
                                     '"older", "same" (default ["missing", "older"]). "newer" is refused: Android '
                                     'does not let a Device Owner downgrade.')
    sdk_check = serializers.BooleanField(default=True, help_text="Leave out devices whose SDK is below the release's min SDK.")
    rollout = serializers.JSONField(required=False, help_text='Staged: {"waves": [1, 10, 50, 100] (cumulative %) or '
                                    '["group-a", "group-b"], "soak_s": 3600, "threshold_pct": 5}.')
    expires_in_s = serializers.IntegerField(required=False, help_text="Lifetime of each install_apk command.")
    dry_run = serializers.BooleanField(default=False)


class ReleaseBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["id", "package", "version_code", "version_name", "channel"]
        read_only_fields = fields


class WaveSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    label = serializers.CharField()
    state = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    stats = serializers.DictField(child=serializers.IntegerField(),
                                  help_text="devices (issued), succeeded, failed (failed, rejected, expired), pending, cancelled, skipped")
    command_ids = serializers.ListField(child=serializers.CharField())


class RolloutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    release = ReleaseBriefSerializer()
    previous_release = ReleaseBriefSerializer(allow_null=True)
    state = serializers.CharField()
    reason = serializers.CharField()
    current_wave = serializers.SerializerMethodField()
    target = serializers.JSONField()
    versions = serializers.JSONField()
    sdk_check = serializers.BooleanField()
    soak_s = serializers.IntegerField()
    threshold_pct = serializers.FloatField()
    waves = WaveSerializer(source="wave_list", many=True)
    rollback_command_ids = serializers.ListField(child=serializers.CharField())
    created_by = serializers.CharField(source="created_by_label")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.IntegerField())
    def get_current_wave(self, rollout) -> int:
        return rollout.current_wave + 1


class RollbackSerializer(serializers.Serializer):
    confirm_data_loss = serializers.BooleanField(default=False, help_text="Rolling back uninstalls the app (its data goes) "
                                                 "and installs the previous release: Android refuses a downgrade.")
