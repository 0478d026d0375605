"""The admin API of APK releases: read by every role and by API keys with `apk:read`."""

from rest_framework import mixins, viewsets

from accounts.permissions import HasScope, IsViewer
from apks.api.serializers import ReleaseSerializer
from apks.filters import ReleaseFilter
from apks.models import Release
from apks.selectors import releases_for

UUID_RE = "[0-9a-fA-F-]{36}"


class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """APK releases, newest version first per package. Filter with `package`, `channel`,
    `version_code_min`, `version_code_max`, `signer` (SHA-256 of the signing certificate, or its
    start), `min_sdk`, `installable_on_sdk`, `uploader`, `uploaded_after`, `uploaded_before`."""

    serializer_class = ReleaseSerializer
    filterset_class = ReleaseFilter
    permission_classes = [IsViewer | HasScope.of("apk:read")]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = Release.objects.none()

    def get_queryset(self):
        return releases_for(self.request).order_by("package", "-version_code")
