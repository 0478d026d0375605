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
