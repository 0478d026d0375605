from django import forms

from devices.models import DeviceGroup


class DeviceEditForm(forms.Form):
    alias = forms.CharField(max_length=128, required=False)
    group = forms.ModelChoiceField(queryset=DeviceGroup.objects.all(), required=False, empty_label="— none —")
    tags = forms.CharField(required=False, help_text="Comma-separated.", max_length=1000)

    def clean_tags(self):
        names = [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]
        if len(names) > 50:
            raise forms.ValidationError("At most 50 tags.")
        return names


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
