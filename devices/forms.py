from django import forms
from django.utils.text import slugify

from devices.models import DeviceGroup, Tag


class DeviceEditForm(forms.Form):
    alias = forms.CharField(max_length=128, required=False)
    group = forms.ModelChoiceField(queryset=DeviceGroup.objects.all(), required=False, empty_label="— none —")
    tags = forms.CharField(required=False, help_text="Comma-separated.", max_length=1000)

    def clean_tags(self):
        names = [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]
        if len(names) > 50:
            raise forms.ValidationError(f"At most 50 tags (this has {len(names)}).")
        # Tags are stored as slugs (services._tags_from_names): say so rather than drop or cut one.
        unusable = [n for n in names if not slugify(n)]
        if unusable:
            raise forms.ValidationError(f"A tag needs a letter or a digit: “{unusable[0]}”.")
        too_long = [n for n in names if len(slugify(n)) > Tag._meta.get_field("name").max_length]
        if too_long:
            raise forms.ValidationError(f"A tag has at most 64 characters: “{too_long[0][:20]}…”.")
        return names


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=500)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if DeviceGroup.objects.filter(name=name).exists():
            raise forms.ValidationError("A group with this name exists.")
        return name
