"""Policy items as the console shows them: one line per fact, in people's words, and the
difference between two versions item by item, line by line. Always from masked items
(commands.policies.items.masked): a secret value is never more than "***"."""

from datetime import date

from commands.policies import items as policy_items
from commands.policies.forms import LABELS, minutes_to_time, setting_fields


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def freeze_days(start: str, end: str) -> int:
    """Days a freeze period lasts, both ends counted, over the new year if it runs over it."""
    def day(text):
        month, dom = (int(x) for x in text.split("-"))
        return date(2001, month, dom).timetuple().tm_yday  # 2001: Android counts a 365-day year

    return (day(end) - day(start)) % 365 + 1


def item_lines(name: str, value) -> list[str]:
    if name == "kiosk":
        lines = [f"App {value['package']}" + (f" ({value['activity']})" if value.get("activity") else "")]
        lines += [f"Lock task {_onoff(value.get('lock_task', True))}", f"Relaunch when closed {_onoff(value.get('relaunch', True))}",
                  f"Status bar {'shown' if value.get('status_bar') else 'hidden'}"]
        return lines
    if name == "system_update":
        kind = value["type"]
        if kind == "windowed":
            lines = [f"Install in a daily window {minutes_to_time(value['window_start_min'])}–{minutes_to_time(value['window_end_min'])}"]
        else:
            lines = ["Install automatically" if kind == "automatic" else "Postpone updates (at most 30 days)"]
        for p in value.get("freeze_periods", []):
            lines.append(f"Freeze {p['start']} to {p['end']} ({freeze_days(p['start'], p['end'])} days)")
        return lines
    if name == "settings":
        labels = {f["key"]: f["label"] for f in setting_fields()}
        return [f"{labels.get(k, k)}: {_onoff(v) if isinstance(v, bool) else v}" for k, v in value.items()] or ["No setting changed"]
    if name == "restrictions":
        return list(value) or ["None"]
    if name == "wifi":
        return [f"{e['ssid']} ({e['security']}{', hidden' if e.get('hidden') else ''})"
                + (f", password {e['password']}" if e.get("password") else "") for e in value] or ["None"]
    if name == "shell_allowlist":
        return [" ".join(prefix) for prefix in value] or ["Nothing allowed"]
    if name == "apps":
        lines = [f"Required: {r['package']} (version code {r['version_code']})" for r in value.get("required", [])]
        lines += [f"Blocked: {p}" for p in value.get("blocked", [])]
        return lines or ["No app required or blocked"]
    return [str(value)]


def describe(items: dict, sources: dict | None = None) -> list[dict]:
    """[{"name", "label", "lines", "note"}] in the protocol's item order."""
    shown = policy_items.masked(items)
    out = []
    for name in policy_items.ITEMS:
        if name in shown:
            note = "the console's allowlist when saved" if (sources or {}).get(name) == "console" else ""
            out.append({"name": name, "label": LABELS[name], "lines": item_lines(name, shown[name]), "note": note})
    return out


def item_diff(before: dict, after: dict) -> list[dict]:
    """[{"name", "label", "change" (added|removed|changed|same), "removed": [lines], "added": [lines]}]."""
    old, new = policy_items.masked(before), policy_items.masked(after)
    rows = []
    for name in policy_items.ITEMS:
        if name not in old and name not in new:
            continue
        was = item_lines(name, old[name]) if name in old else []
        now = item_lines(name, new[name]) if name in new else []
        if name not in old:
            change = "added"
        elif name not in new:
            change = "removed"
        else:
            change = "changed" if old[name] != new[name] else "same"
        rows.append({"name": name, "label": LABELS[name], "change": change,
                     "removed": [line for line in was if line not in now], "added": [line for line in now if line not in was],
                     "kept": [line for line in now if line in was]})
    return rows
