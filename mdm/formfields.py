"""Console form pieces that speak the user's terms (STYLE.md, HTMX console): a number field says
its range in the unit the field shows ("A whole number from 1 to 3,650 days."), not Django's
"Ensure this value is less than or equal to 3650."; a service's errors ({"name": [...]}, the
dict its ParamsError carries) land beside the fields they name, without the name in front."""

from django import forms


def figure(value) -> str:
    """A bound as people write it: 43,200 and 1,000,000, never 1e+06 (what :g makes of it)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def range_message(lo, hi, *, unit: str = "", integer: bool = True, note: str = "") -> str:
    """"A whole number from 1 to 3,650 days." / "A percentage from 0 to 100." """
    noun = "A percentage" if unit == "%" else "A whole number" if integer else "A number"
    unit_text = "" if unit in ("", "%") else f" {unit}"
    return f"{noun} from {figure(lo)} to {figure(hi)}{unit_text}{f' ({note})' if note else ''}."


def bounded_number(lo, hi, *, unit: str = "", integer: bool = True, note: str = "", **kwargs) -> forms.Field:
    """An IntegerField (or FloatField) from lo to hi whose every complaint is range_message: the
    browser's number input gets the same min and max."""
    message = range_message(lo, hi, unit=unit, integer=integer, note=note)
    field_class = forms.IntegerField if integer else forms.FloatField
    messages = {"invalid": message, "min_value": message.replace("%", "%%"), "max_value": message.replace("%", "%%"),
                "step_size": message.replace("%", "%%"), **kwargs.pop("error_messages", {})}
    return field_class(min_value=lo, max_value=hi, error_messages=messages, **kwargs)


class ServiceErrorsMixin:
    """A service's errors ({"params.minutes": [...], "name": [...]}) on the fields they name:
    `field_map` renames a service's names to the form's; "params.x" goes to "param_x"; a name no
    field has goes to `default_field` (None: the form's own errors). The message is kept as the
    service words it, without the name in front."""

    field_map: dict = {}
    default_field: str | None = None

    def add_service_errors(self, errors: dict) -> None:
        for name, messages in errors.items():
            field = self.field_map.get(name)
            if field is None and name.startswith("params."):
                field = "param_" + name.split(".", 1)[1]
            if field is None and name in self.fields:
                field = name
            for message in messages if isinstance(messages, list) else [messages]:
                self.add_error(field if field in self.fields else self.default_field, str(message))


def plain_messages(errors: dict) -> list[str]:
    """A service's errors as sentences, without the field names in front ("target: ..." is the
    API's way of naming a field, not the console user's), each once."""
    out = []
    for messages in errors.values():
        for message in messages if isinstance(messages, list) else [messages]:
            if str(message) not in out:
                out.append(str(message))
    return out
