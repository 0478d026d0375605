"""One FilterSet for the console's APK page and the API's list (docs/ARCHITECTURE.md). Bounded values: out
of range is a form error (ignored by the console, a 400 from the API), never a database error."""

import django_filters
from django.conf import settings

from apks.models import Release
from mdm.filters import UtcIsoDateTimeFilter

def _range(message: str) -> dict:
    return {"invalid": message, "min_value": message, "max_value": message}


VERSION = {"min_value": 0, "max_value": 2**63 - 1, "error_messages": _range("A whole number, 0 or more.")}
SDK = {"min_value": 0, "max_value": 10_000, "error_messages": _range("An SDK level from 0 to 10,000.")}


class ReleaseFilter(django_filters.FilterSet):
    package = django_filters.CharFilter(field_name="package", max_length=255, label="Package")
    channel = django_filters.ChoiceFilter(choices=lambda: [(c, c) for c in settings.APK_CHANNELS], label="Channel")
    version_code_min = django_filters.NumberFilter(field_name="version_code", lookup_expr="gte", label="Version code from", **VERSION)
    version_code_max = django_filters.NumberFilter(field_name="version_code", lookup_expr="lte", label="Version code to", **VERSION)
    signer = django_filters.CharFilter(field_name="signer_sha256", max_length=64, method="filter_signer", label="Signer SHA-256")
    min_sdk = django_filters.NumberFilter(field_name="min_sdk", label="Min SDK", **SDK)
    installable_on_sdk = django_filters.NumberFilter(field_name="min_sdk", lookup_expr="lte", label="Installable on SDK", **SDK)
    uploader = django_filters.CharFilter(field_name="uploaded_by_label", lookup_expr="icontains", max_length=200, label="Uploaded by")
    uploaded_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Uploaded after")
    uploaded_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label="Uploaded before")

    class Meta:
        model = Release
        fields = ["package", "channel", "version_code_min", "version_code_max", "signer", "min_sdk", "installable_on_sdk",
                  "uploader", "uploaded_after", "uploaded_before"]

    def filter_signer(self, queryset, name, value):
        # Pasted either way: hex with or without colons (keytool prints AA:BB:...), any case.
        return queryset.filter(signer_sha256__startswith=value.replace(":", "").strip().lower()) if value.strip() else queryset
