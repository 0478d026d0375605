"""The console's policy editor: one form per item, read from a POST into the items the services
take (commands.policies.items validates them), rebuilt from a version for editing, and the
validation errors placed beside their field in the user's terms.

The editor collects the errors of every item (each item is checked on its own with
items.clean_items), so an admin sees all of them at once; the service checks the whole document
again when it saves."""

import re

from commands.models import ShellAllowRule, WifiConfig
from commands.params import ParamsError
from commands.policies import items as policy_items
from commands.services.shell_allowlist import READ_ONLY_PREFIXES, is_read_only
from mdm import text

LABELS = {"kiosk": "Kiosk", "system_update": "System updates", "settings": "Settings", "restrictions": "Restrictions",
          "wifi": "Wi-Fi", "shell_allowlist": "Shell allowlist", "apps": "Apps"}
UPDATE_TYPES = [("automatic", "Install automatically"), ("windowed", "Install in a daily window"),
                ("postpone", "Postpone (Android holds an update for at most 30 days)")]
FREEZE_ROWS_SPARE = 2
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
INDEX_RE = re.compile(r"\[(\d+)\]")

# The APK registry lives in apks/, above commands/: it registers the releases the `apps` item may
# require at start-up (apks.apps), as it registers the resolver that validates them.
# chooser() -> [{"apk_id", "package", "version_name", "version_code", "label"}], newest first per package.
_release_chooser = None


def register_release_chooser(chooser) -> None:
    global _release_chooser
    _release_chooser = chooser


def release_choices() -> list[dict]:
    return _release_chooser() if _release_chooser else []


def releases_by_package() -> list[tuple[str, list[dict]]]:
    grouped: dict[str, list[dict]] = {}
    for release in release_choices():
        grouped.setdefault(release["package"], []).append(release)
    return sorted(grouped.items())


def minutes_to_time(minutes) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}" if isinstance(minutes, int) else ""


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def setting_fields() -> list[dict]:
    """The settings item's fields, from items.SETTINGS (its keys, types and bounds)."""
    fields = []
    for key, (kind, bounds) in policy_items.SETTINGS.items():
        unit = " (seconds)" if key.endswith("_s") else ""
        label = key.removesuffix("_s").replace("_", " ").capitalize() + unit
        kind_name = "bool" if kind is bool else "int" if kind is int else "text"
        fields.append({"key": key, "label": label, "kind": kind_name,
                       "min": bounds[0] if bounds else None, "max": bounds[1] if bounds else None})
    return fields


def _setting_label(key: str) -> str:
    return next((f["label"] for f in setting_fields() if f["key"] == key), key)


class PolicyEditor:
    """The editor's state: which items are on and each field as the form shows it. Built from a
    POST (`from_post`) or from a version's items (`from_items`); `raw_items()` is the document
    for the services, `errors` {slot: [message]} what the template shows beside each field."""

    def __init__(self):
        self.name = ""
        self.description = ""
        self.enabled: set[str] = set()
        self.kiosk = {"package": "", "activity": "", "lock_task": True, "relaunch": True, "status_bar": False}
        self.update = {"type": "automatic", "window_start": "", "window_end": ""}
        self.freeze: list[dict] = []  # [{"start", "end"}] as typed, blank rows included
        self.settings: dict[str, str] = {}  # key -> "" | "on" | "off" | text
        self.restrictions: set[str] = set()
        self.wifi: set[str] = set()
        self.shell_mode = "explicit"
        self.shell_lines = ""
        self.apps_required: set[str] = set()
        self.apps_blocked = ""
        self.errors: dict[str, list[str]] = {}
        self._read_errors: dict[str, list[str]] = {}
        self._freeze_rows: list[int] = []  # the form row of each freeze period sent

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_post(cls, post) -> "PolicyEditor":
        ed = cls()
        ed.name = post.get("name", "").strip()
        ed.description = post.get("description", "").strip()
        ed.enabled = {name for name in post.getlist("item") if name in policy_items.ITEMS}
        ed.kiosk = {"package": post.get("kiosk_package", "").strip(), "activity": post.get("kiosk_activity", "").strip(),
                    "lock_task": "kiosk_lock_task" in post, "relaunch": "kiosk_relaunch" in post,
                    "status_bar": "kiosk_status_bar" in post}
        ed.update = {"type": post.get("update_type", "automatic"), "window_start": post.get("window_start", "").strip(),
                     "window_end": post.get("window_end", "").strip()}
        starts, ends = post.getlist("freeze_start"), post.getlist("freeze_end")
        ed.freeze = [{"start": s.strip(), "end": e.strip()} for s, e in zip(starts, ends)]
        ed.settings = {f["key"]: post.get(f"setting_{f['key']}", "").strip() for f in setting_fields()}
        ed.restrictions = set(post.getlist("restriction"))
        ed.wifi = set(post.getlist("wifi"))
        ed.shell_mode = "console" if post.get("shell_mode") == "console" else "explicit"
        ed.shell_lines = post.get("shell_lines", "")
        ed.apps_required = {v for v in post.getlist("apps_required") if v}
        ed.apps_blocked = post.get("apps_blocked", "")
        return ed

    @classmethod
    def from_items(cls, items: dict, *, sources: dict | None = None, name: str = "", description: str = "") -> "PolicyEditor":
        ed = cls()
        ed.name, ed.description = name, description
        ed.enabled = set(items)
        if "kiosk" in items:
            ed.kiosk = {**ed.kiosk, **items["kiosk"], "activity": items["kiosk"].get("activity", "")}
        if "system_update" in items:
            su = items["system_update"]
            ed.update = {"type": su["type"], "window_start": minutes_to_time(su.get("window_start_min")),
                         "window_end": minutes_to_time(su.get("window_end_min"))}
            ed.freeze = [dict(p) for p in su.get("freeze_periods", [])]
        for key, value in items.get("settings", {}).items():
            ed.settings[key] = ("on" if value else "off") if isinstance(value, bool) else str(value)
        ed.restrictions = set(items.get("restrictions", []))
        ed.wifi = {entry["id"] for entry in items.get("wifi", [])}
        if (sources or {}).get("shell_allowlist") == "console":
            ed.shell_mode = "console"
        else:
            ed.shell_lines = "\n".join(" ".join(prefix) for prefix in items.get("shell_allowlist", []))
        apps = items.get("apps", {})
        ed.apps_required = {r["apk_id"] for r in apps.get("required", [])}
        ed.apps_blocked = "\n".join(apps.get("blocked", []))
        return ed

    def freeze_rows(self) -> list[dict]:
        """The freeze period rows to show: those typed, in their order (so errors stay beside
        their row), then spare blank ones, at most 10 rows in all."""
        rows = list(self.freeze)
        while rows and not (rows[-1]["start"] or rows[-1]["end"]):
            rows.pop()
        spare = max(0, min(FREEZE_ROWS_SPARE, policy_items.MAX_FREEZE_PERIODS - len(rows)))
        rows += [{"start": "", "end": ""} for _ in range(spare)]
        return [{**row, "index": i, "errors": self.errors.get(f"freeze.{i}", [])} for i, row in enumerate(rows)]

    # --- reading into items --------------------------------------------------------------------

    def _fail_read(self, slot: str, message: str) -> None:
        self._read_errors.setdefault(slot, []).append(message)

    def _time(self, text: str, slot: str):
        match = TIME_RE.match(text)
        if not match:
            self._fail_read(slot, "A time of day as HH:MM, from 00:00 to 23:59.")
            return None
        return int(match[1]) * 60 + int(match[2])

    def _item(self, name: str):
        if name == "kiosk":
            value = {k: v for k, v in self.kiosk.items() if k != "activity" or v}
            return value
        if name == "system_update":
            value = {"type": self.update["type"]}
            if self.update["type"] == "windowed":
                value["window_start_min"] = self._time(self.update["window_start"], "system_update.window_start_min")
                value["window_end_min"] = self._time(self.update["window_end"], "system_update.window_end_min")
            self._freeze_rows = [i for i, r in enumerate(self.freeze) if r["start"] or r["end"]]
            value["freeze_periods"] = [self.freeze[i] for i in self._freeze_rows]
            return value
        if name == "settings":
            return self._settings()
        if name == "restrictions":
            return sorted(self.restrictions)
        if name == "wifi":
            return sorted(self.wifi)
        if name == "shell_allowlist":
            return "console" if self.shell_mode == "console" else [line.split() for line in _lines(self.shell_lines)]
        if name == "apps":
            blocked = [p for line in _lines(self.apps_blocked) for p in line.replace(",", " ").split()]
            return {"required": sorted(self.apps_required), "blocked": blocked}
        raise KeyError(name)

    def _settings(self) -> dict:
        out = {}
        for field in setting_fields():
            key, given = field["key"], self.settings.get(field["key"], "")
            if given == "":
                continue
            if field["kind"] == "bool":
                out[key] = given == "on"
            elif field["kind"] == "int":
                try:
                    out[key] = int(given)
                except ValueError:
                    self._fail_read(f"settings.{key}", f"A whole number from {field['min']:,} to {field['max']:,}.")
            else:
                out[key] = given
        return out

    def raw_items(self) -> dict:
        return {name: self._item(name) for name in policy_items.ITEMS if name in self.enabled}

    def validate(self) -> dict | None:
        """The items for the services, or None with `errors` set. Every item is checked on its own
        so that each shows its error (clean_items stops at the first one)."""
        self._read_errors = {}
        raw = self.raw_items()
        errors = dict(self._read_errors)
        for name, value in raw.items():
            if any(slot.split(".")[0] == name for slot in self._read_errors):
                continue
            try:
                policy_items.clean_items({name: value})
            except ParamsError as exc:
                self.add_errors(exc, into=errors)
        if not self.name or len(self.name) > 100 or not text.is_clean(self.name):
            errors.setdefault("name", []).append("A name of 1-100 characters is required (no NUL or lone surrogate).")
        if len(self.description) > 300 or not text.is_clean(self.description):
            errors.setdefault("description", []).append("At most 300 characters (no NUL or lone surrogate).")
        self.errors = errors
        return None if errors else raw

    # --- errors in the user's terms ------------------------------------------------------------

    def add_errors(self, exc: ParamsError, into: dict | None = None) -> None:
        target = self.errors if into is None else into
        for key, messages in exc.errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                slot, text = self._user_terms(key, str(message))
                target.setdefault(slot, []).append(text)

    def _user_terms(self, key: str, message: str) -> tuple[str, str]:
        if key == "items" or not key.startswith("items."):
            return ("__all__" if key == "items" else key), message
        path = key.removeprefix("items.")
        freeze = re.match(r"system_update\.freeze_periods\[(\d+)\]", path)
        if freeze:
            sent = int(freeze[1])
            row = self._freeze_rows[sent] if sent < len(self._freeze_rows) else sent
            return f"freeze.{row}", message
        if path in ("system_update.window_start_min", "system_update.window_end_min"):
            return path, "A time of day as HH:MM, from 00:00 to 23:59."
        if path.startswith("settings."):
            return path, self._setting_message(path.removeprefix("settings."), message)
        if path.startswith("shell_allowlist"):
            return "shell_allowlist", self._shell_message(path, message)
        if path.startswith("wifi"):
            return "wifi", message if "listed twice" in message else "Choose stored Wi-Fi configurations (one of them was deleted)."
        if path.startswith("apps.required"):
            return "apps.required", message if "required twice" in message else "That release is no longer in the APK registry; choose another."
        if path.startswith("apps.blocked"):
            return "apps.blocked", message
        if path.startswith("restrictions"):
            return "restrictions", message
        return INDEX_RE.sub("", path), message

    @staticmethod
    def _setting_message(key: str, message: str) -> str:
        if key == "time_zone" and "auto_time_zone" in message:
            return f"A fixed time zone needs “{_setting_label('auto_time_zone')}” set to Off."
        if key == "time_zone":
            return "A time zone name like Europe/Paris."
        return message.replace("An integer", "A whole number")

    def _shell_message(self, path: str, message: str) -> str:
        allowed = ", ".join(" ".join(p) for p in READ_ONLY_PREFIXES)
        if self.shell_mode == "console":
            broad = [r.label for r in ShellAllowRule.objects.filter(enabled=True) if not is_read_only(r.argv_prefix)]
            return (f"The console's allowlist allows {', '.join(broad) or 'a command'} too, which is not a read-only "
                    f"diagnostic; turn that rule off on the Shell allowlist page, or list commands here ({allowed}).")
        index = INDEX_RE.search(path)
        lines = _lines(self.shell_lines)
        if index and int(index[1]) < len(lines):
            line = lines[int(index[1])]
            if "read-only" in message:
                return f"Line {int(index[1]) + 1}, “{line}”: not a read-only diagnostic the agent can run ({allowed})."
            return f"Line {int(index[1]) + 1}, “{line}”: {message}"
        return message


def warnings(items: dict) -> list[str]:
    """What does not stop a save but an admin should know."""
    from devices.models import InstalledApp

    out = []
    kiosk = items.get("kiosk")
    if kiosk:
        package = kiosk["package"]
        required = {r["package"] for r in items.get("apps", {}).get("required", [])}
        if package not in required and not InstalledApp.objects.filter(package=package, device__deleted_at__isnull=True).exists():
            out.append(f"No device reports {package} in its inventory: the kiosk starts only where the app is "
                       "installed (add its release under Apps to install it).")
    update = items.get("system_update")
    if update and update.get("freeze_periods"):
        out.append("During a freeze period Android installs no system update at all, security patches included.")
    if update and update.get("type") == "postpone":
        out.append("Android postpones an update for at most 30 days; after that the device may install it.")
    return out


def wifi_choices():
    return WifiConfig.objects.select_related("group").order_by("name")
