"""Filter fields shared by the apps' FilterSets."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC while it is still a form value. Python accepts
    offsets up to ±23:59 and PostgreSQL only ±15:59: `9999-12-31T23:59:59-23:59` reached the
    database as it was and failed there (a 500). In UTC it is either a valid value or, past year
    9999, a form error."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
