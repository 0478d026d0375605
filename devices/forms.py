import uuid

from django import forms
from django.http import QueryDict
from django.utils.text import slugify

from devices.filters import DeviceFilter
from devices.models import Device, DeviceGroup, Tag

NO_GROUP = "-"  # the bulk "move to group" choice that takes devices out of their group


def _tag_names(raw: str) -> list[str]:
    names = [t.strip() for t in raw.split(",") if t.strip()]
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


class DeviceEditForm(forms.Form):
    alias = forms.CharField(max_length=128, required=False)
    group = forms.ModelChoiceField(queryset=DeviceGroup.objects.all(), required=False, empty_label="— none —")
    tags = forms.CharField(required=False, help_text="Comma-separated.", max_length=1000)

    def clean_tags(self):
        return _tag_names(self.cleaned_data["tags"])


class GroupForm(forms.Form):
    # The groups page shows these in one row with no <label>: the name is said by aria-label.
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "Group name", "aria-label": "Group name"}))
    description = forms.CharField(required=False, max_length=500,
                                  widget=forms.TextInput(attrs={"placeholder": "Description (optional)", "aria-label": "Description"}))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if DeviceGroup.objects.filter(name=name).exists():
            raise forms.ValidationError("A group with this name exists.")
        return name


class SelectionForm(forms.Form):
    """The devices list's selection: the ticked rows (`device_ids`), or with `all_matching` every
    device the list's filter (`query`, the list's own query string) matches. `cleaned_data["ids"]`
    is the selected devices' ids, scoped to what the user may see."""

    all_matching = forms.BooleanField(required=False)
    query = forms.CharField(required=False, max_length=4000)

    def __init__(self, data, *, user, **kwargs):
        super().__init__(data, **kwargs)
        self.user = user

    def filter_params(self) -> dict:
        """The list's filter fields that are set (no sort or page)."""
        params = QueryDict(self.cleaned_data.get("query") or "")
        return {k: v for k, v in params.items() if v and k in DeviceFilter.base_filters and k != "sort"}

    def clean(self):
        data = super().clean()
        visible = Device.objects.for_user(self.user)
        if data.get("all_matching"):
            devices = DeviceFilter(self.filter_params(), queryset=visible)
            if not devices.is_valid():
                raise forms.ValidationError("The list's filter is not valid; reload the page and try again.")
            ids = list(visible.filter(id__in=devices.qs.values("id")).values_list("id", flat=True))
        else:
            try:
                given = {uuid.UUID(v) for v in self.data.getlist("device_ids")}
            except ValueError:
                raise forms.ValidationError("The selection holds something that is not a device; reload the page.") from None
            ids = list(visible.filter(id__in=given).values_list("id", flat=True)) if given else []
        if not ids:
            raise forms.ValidationError("Select at least one device.")
        data["ids"] = ids
        return data


class BulkGroupForm(SelectionForm):
    group = forms.CharField(max_length=100, required=False, error_messages={"max_length": "No such group."})

    def clean_group(self):
        name = self.cleaned_data["group"].strip()
        if not name:
            raise forms.ValidationError("Choose a group to move the devices to.")
        if name == NO_GROUP:
            return None
        group = DeviceGroup.objects.filter(name=name).first()
        if group is None:
            raise forms.ValidationError(f"There is no group named “{name}”.")
        return group


class BulkTagForm(SelectionForm):
    tag = forms.CharField(max_length=1000, required=False)

    def clean_tag(self):
        names = _tag_names(self.cleaned_data["tag"])
        if not any(slugify(n) for n in names):
            raise forms.ValidationError("Give a tag name (letters, digits or dashes).")
        return names


def first_error(form: forms.Form) -> str:
    """The one message the bulk bar shows (its fields' names are not on screen)."""
    for errors in form.errors.values():
        return errors[0]
    return ""
