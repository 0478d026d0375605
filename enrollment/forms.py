import base64
import re
import zoneinfo

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from devices.models import DeviceGroup, Tag
from enrollment import conf, provisioning, scripts, selectors
from enrollment.models import BloatwarePreset, EnrollmentKey, TweakPreset, hash_key
from mdm.formfields import bounded_number

LOCALE_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")


def usable_key(raw: str) -> EnrollmentKey | None:
    key = EnrollmentKey.objects.filter(key_hash=hash_key(raw.strip())).first()
    return key if key is not None and key.state(timezone.now()) == "active" else None


class KeyField(forms.CharField):
    """An enrollment key pasted by an admin: it must exist and be usable (the console never
    stores or shows keys after creation, so scripts and QR codes need it pasted)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("help_text", "Keys are stored hashed, so the console cannot list the existing ones: paste a key "
                                       "you kept, or create one above and press “Use in the QR builder and the one-liner”.")
        kwargs.setdefault("widget", forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "mono"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value).strip()
        if usable_key(value) is None:
            raise forms.ValidationError("Unknown, revoked, expired or used-up enrollment key.")
        return value


class KeyLookupMixin:
    """The key field asks the server which key it is as it is typed (views.key_info, by POST:
    the key stays out of URLs and access logs) and shows it under the field."""

    key_info_prefix = ""

    def __init__(self, *args, **kwargs):
        # Both forms are on one page with fields of the same names: ids of their own (qr_apk_url,
        # oneliner_apk_url), or labels and htmx's settling would find the other form's field.
        kwargs.setdefault("auto_id", f"{self.key_info_prefix}_%s")
        super().__init__(*args, **kwargs)

    def _wire_key_lookup(self):
        self.fields["enroll_key"].widget.attrs.update({
            "hx-post": reverse("enrollment:key_info", args=[self.key_info_prefix]),
            "hx-trigger": "input changed delay:400ms, change",
            "hx-target": f"#{self.key_info_prefix}-key-info",
            "hx-swap": "outerHTML",
            "hx-params": "enroll_key",
            "hx-indicator": "this",
            "aria-describedby": f"{self.key_info_prefix}-key-info",
        })

    def key_info(self) -> selectors.KeyLookup | None:
        """What the key typed tells, for the form rendered again after a POST."""
        raw = self["enroll_key"].value() if self.is_bound else ""
        return selectors.lookup_key(raw or "", now=timezone.now())

    def agent_in_registry(self) -> bool:
        """The registry holds the agent's package but no release of it is marked as the agent."""
        return conf.get("AGENT_PACKAGE") in selectors.registry_packages()


KIOSK_WIDGET = {"list": "kiosk-packages", "autocomplete": "off", "spellcheck": "false"}


class KeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_in_days = bounded_number(1, 3650, unit="days", required=False, label="Expires in (days)")
    max_uses = bounded_number(1, 10_000_000, unit="uses", required=False, label="Max uses")
    group = forms.ModelChoiceField(DeviceGroup.objects.all(), required=False, empty_label="— no group —", label="Pin group")
    tags = forms.ModelMultipleChoiceField(Tag.objects.all(), required=False, label="Pin tags")


class QrForm(KeyLookupMixin, forms.Form):
    key_info_prefix = "qr"

    enroll_key = KeyField(label="Enrollment key")
    server_url = forms.URLField(label="Server URL", assume_scheme="https")
    apk_url = forms.URLField(label="Agent APK download URL", assume_scheme="https")
    admin_component = forms.CharField(max_length=255, label="Admin component")
    package_checksum = forms.CharField(
        max_length=100, required=False, label="Package checksum",
        help_text="SHA-256 of the APK, URL-safe base64. Optional: the server downloads the APK and computes it; "
                  "if you enter one, it must match.",
    )
    signature_checksum = forms.CharField(
        max_length=100, required=False, label="Signature checksum",
        help_text="SHA-256 of the signing certificate, URL-safe base64. Optional.",
    )
    use_signature_checksum = forms.BooleanField(required=False, label="Use the signature checksum instead of the package checksum (survives APK updates)")
    wifi_ssid = forms.CharField(max_length=64, required=False, label="Wi-Fi SSID")
    wifi_security = forms.ChoiceField(choices=[(s, s) for s in provisioning.WIFI_SECURITY], initial="WPA", label="Security")
    wifi_password = forms.CharField(max_length=128, required=False, label="Password", widget=forms.PasswordInput(render_value=True))
    wifi_hidden = forms.BooleanField(required=False, label="Hidden network")
    eap_method = forms.ChoiceField(choices=[("", "—")] + [(m, m) for m in provisioning.EAP_METHODS], required=False, label="EAP method")
    eap_phase2 = forms.ChoiceField(choices=[(m, m or "—") for m in provisioning.PHASE2], required=False, label="Phase 2")
    eap_identity = forms.CharField(max_length=128, required=False, label="Identity")
    eap_anonymous_identity = forms.CharField(max_length=128, required=False, label="Anonymous identity")
    eap_domain = forms.CharField(max_length=128, required=False, label="Domain")
    locale = forms.CharField(max_length=10, required=False, label="Locale", help_text="e.g. en_US")
    time_zone = forms.CharField(max_length=64, required=False, label="Time zone", help_text="e.g. Europe/Berlin")
    skip_encryption = forms.BooleanField(required=False, label="Skip encryption")
    leave_system_apps = forms.BooleanField(required=False, label="Leave all system apps enabled")
    kiosk_package = forms.CharField(
        max_length=255, required=False, label="Kiosk app (package)", widget=forms.TextInput(attrs=KIOSK_WIDGET),
        help_text="Optional: the app the agent keeps in the foreground from the start (its kiosk_package extra).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wire_key_lookup()
        self.fields["admin_component"].initial = conf.get("AGENT_ADMIN_RECEIVER")
        self.fields["server_url"].initial = settings.PUBLIC_BASE_URL
        self.agent = provisioning.agent_apk()
        if self.agent:  # the marked release: its public download and the checksums the registry knows
            self.fields["apk_url"].initial = self.agent.url
            self.fields["package_checksum"].initial = self.agent.facts.package_checksum
            self.fields["signature_checksum"].initial = self.agent.facts.signature_checksum or ""
        else:
            self.fields["apk_url"].initial = conf.get("AGENT_APK_URL")
        self.apk: provisioning.ApkFacts | None = None

    def clean_locale(self):
        value = self.cleaned_data["locale"].strip()
        if value and not LOCALE_RE.match(value):
            raise forms.ValidationError("A locale like en_US.")
        return value

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"].strip()
        if value and value not in zoneinfo.available_timezones():
            raise forms.ValidationError("Unknown time zone.")
        return value

    def clean_kiosk_package(self):
        return _package(self.cleaned_data["kiosk_package"])

    def clean_admin_component(self):
        value = self.cleaned_data["admin_component"].strip()
        if not re.match(r"^[A-Za-z0-9_.]+/[A-Za-z0-9_.$]+$", value):
            raise forms.ValidationError("package/.Receiver or package/full.ClassName")
        return value

    def clean(self):
        data = super().clean()
        if data.get("wifi_ssid"):
            security = data.get("wifi_security")
            if security in ("WPA", "WEP") and not data.get("wifi_password"):
                self.add_error("wifi_password", "Required for this security type.")
            if security == "EAP" and not data.get("eap_method"):
                self.add_error("eap_method", "Required for EAP.")
        if self.errors or not data.get("apk_url"):
            return data
        if self.agent and data["apk_url"] == self.agent.url:  # the marked agent release: checksums known
            self.apk = self.agent.facts
        else:
            # The agent release's checksums are filled in for its URL: left as they were while
            # the URL changed, they describe another APK, so they are dropped, not checked.
            for name, prefilled in (("package_checksum", self.agent and self.agent.facts.package_checksum),
                                    ("signature_checksum", self.agent and self.agent.facts.signature_checksum)):
                if prefilled and provisioning.normalise_checksum(data.get(name) or "") == prefilled:
                    data[name] = ""
            try:
                self.apk = provisioning.fetch_apk(data["apk_url"])
            except provisioning.ApkFetchError as exc:
                self.add_error("apk_url", str(exc))
                return data
        entered = provisioning.normalise_checksum(data.get("package_checksum") or "")
        if entered and entered != self.apk.package_checksum:
            self.add_error("package_checksum", f"Does not match the APK at that URL (its checksum is {self.apk.package_checksum}).")
        entered_sig = provisioning.normalise_checksum(data.get("signature_checksum") or "")
        if entered_sig and self.apk.signature_checksum and entered_sig != self.apk.signature_checksum:
            self.add_error("signature_checksum", f"Does not match the APK's signing certificate ({self.apk.signature_checksum}).")
        return data

    def spec(self) -> provisioning.QrSpec:
        d = self.cleaned_data
        use_signature = d["use_signature_checksum"]
        signature = provisioning.normalise_checksum(d["signature_checksum"]) or (self.apk.signature_checksum or "")
        return provisioning.QrSpec(
            admin_component=d["admin_component"],
            apk_url=d["apk_url"],
            package_checksum="" if use_signature and signature else self.apk.package_checksum,
            signature_checksum=signature if use_signature else provisioning.normalise_checksum(d["signature_checksum"]),
            server_url=d["server_url"].rstrip("/"),
            enroll_key=d["enroll_key"],
            wifi_ssid=d["wifi_ssid"],
            wifi_security=d["wifi_security"],
            wifi_password=d["wifi_password"],
            wifi_hidden=d["wifi_hidden"],
            eap_method=d["eap_method"],
            eap_phase2=d["eap_phase2"],
            eap_identity=d["eap_identity"],
            eap_anonymous_identity=d["eap_anonymous_identity"],
            eap_domain=d["eap_domain"],
            locale=d["locale"],
            time_zone=d["time_zone"],
            skip_encryption=d["skip_encryption"],
            leave_system_apps=d["leave_system_apps"],
            kiosk_package=d["kiosk_package"],
        )


class OneLinerForm(KeyLookupMixin, forms.Form):
    key_info_prefix = "oneliner"
    enroll_key = KeyField(label="Enrollment key")
    server_url = forms.URLField(label="Server URL", assume_scheme="https")
    apk_url = forms.URLField(label="Agent APK download URL", assume_scheme="https")
    sha256 = forms.CharField(
        max_length=100, required=False, label="Agent APK SHA-256 (hex)",
        help_text="What the script checks the download against. Optional: the server downloads the APK and computes it; "
                  "if you enter one, it must match.",
    )
    bloatware = forms.ModelMultipleChoiceField(BloatwarePreset.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, label="Remove bloatware")
    tweaks = forms.ModelMultipleChoiceField(TweakPreset.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, label="Apply tweaks")
    kiosk_package = forms.CharField(
        max_length=255, required=False, label="Kiosk app (package)", widget=forms.TextInput(attrs=KIOSK_WIDGET),
        help_text="Optional: the app the agent keeps in the foreground from the start (its kiosk_package extra).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wire_key_lookup()
        self.fields["server_url"].initial = settings.PUBLIC_BASE_URL
        self.agent = provisioning.agent_apk()
        if self.agent:
            self.fields["apk_url"].initial, self.fields["sha256"].initial = self.agent.url, self.agent.sha256
        else:
            self.fields["apk_url"].initial = conf.get("AGENT_APK_URL")
            self.fields["sha256"].initial = scripts.expected_sha256(conf.get("AGENT_APK_URL"))[0] if conf.get("AGENT_APK_URL") else ""
        self.sha256 = ""  # what the script verifies the APK against, known after clean()

    def clean_server_url(self):
        value = self.cleaned_data["server_url"].rstrip("/")
        if not scripts.SERVER_URL_RE.match(value):
            raise forms.ValidationError("An address like https://mdm.example.com (no query string).")
        return value

    def clean_kiosk_package(self):
        return _package(self.cleaned_data["kiosk_package"])

    def clean_sha256(self):
        value = self.cleaned_data["sha256"].strip().lower()
        if value and not scripts.SHA256_RE.match(value):
            raise forms.ValidationError("64 hexadecimal digits (the SHA-256 of the APK file).")
        return value

    def clean(self):
        """The APK's SHA-256, which the scripts check before `adb install`: the marked agent
        release's or the configured one's when the URL is theirs, else the server downloads the APK
        once, as the QR builder does (same SSRF rules), and puts its checksum in the one-liner. One
        entered must match it."""
        data = super().clean()
        if self.errors or not data.get("apk_url"):
            return data
        given = data.get("sha256", "")
        if given and self.agent and data["apk_url"] != self.agent.url and given == self.agent.sha256:
            given = ""  # filled in for the agent release's URL, left while the URL changed (as in QrForm)
        known, _ = scripts.expected_sha256(data["apk_url"])
        if not known:
            try:
                facts = provisioning.fetch_apk(data["apk_url"])
            except provisioning.ApkFetchError as exc:
                self.add_error("apk_url", str(exc))
                return data
            known = base64.urlsafe_b64decode(facts.package_checksum + "=" * (-len(facts.package_checksum) % 4)).hex()
        if given and given != known:
            self.add_error("sha256", f"Does not match the APK at that URL (its SHA-256 is {known}).")
            return data
        self.sha256 = known
        return data


def _package(value: str) -> str:
    value = value.strip()
    if value and not provisioning.PACKAGE_RE.match(value):
        raise forms.ValidationError("A package name like com.example.kiosk.")
    return value


class PresetNameMixin:
    """A preset's name is unique: a taken one is the name field's error, not a database error."""

    model = None

    def __init__(self, *args, preset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.preset = preset

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = self.model.objects.filter(name=name)
        if self.preset is not None:
            taken = taken.exclude(pk=self.preset.pk)
        if taken.exists():
            raise forms.ValidationError("Another preset has this name.")
        return name


class BloatwarePresetForm(PresetNameMixin, forms.Form):
    model = BloatwarePreset
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=255, required=False)
    packages = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), help_text="One package name per line.")

    def clean_packages(self):
        names = [line.strip() for line in self.cleaned_data["packages"].splitlines() if line.strip()]
        bad = [n for n in names if not provisioning.PACKAGE_RE.match(n)]
        if bad:
            raise forms.ValidationError(f"Not a package name: {', '.join(bad[:5])}")
        if len(names) > 500:
            raise forms.ValidationError("At most 500 packages.")
        return list(dict.fromkeys(names))


class TweakPresetForm(PresetNameMixin, forms.Form):
    model = TweakPreset
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=255, required=False)
    settings = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), help_text="One per line: namespace key value (namespace: system, secure or global)."
    )

    def clean_settings(self):
        result = []
        for number, line in enumerate(self.cleaned_data["settings"].splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(None, 2)
            if len(parts) != 3 or parts[0] not in ("system", "secure", "global"):
                raise forms.ValidationError(f"Line {number}: write it as “namespace key value” (namespace: system, secure or global).")
            namespace, key, value = parts
            if not provisioning.SETTING_KEY_RE.match(key) or not provisioning.SETTING_VALUE_RE.match(value):
                raise forms.ValidationError(f"Line {number}: key or value has characters that are not allowed.")
            result.append({"namespace": namespace, "key": key, "value": value})
        if not result:
            raise forms.ValidationError("At least one setting.")
        return result
