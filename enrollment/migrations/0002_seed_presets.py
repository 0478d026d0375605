"""Sensible default presets for the adb one-liner (editable in the console afterwards)."""

from django.db import migrations

BLOATWARE = [
    (
        "Google consumer apps",
        "YouTube, Music, Movies, Duo/Meet, Photos, Podcasts and friends: rarely wanted on a kiosk.",
        [
            "com.google.android.youtube",
            "com.google.android.apps.youtube.music",
            "com.google.android.videos",
            "com.google.android.apps.tachyon",
            "com.google.android.apps.photos",
            "com.google.android.apps.podcasts",
            "com.google.android.apps.books",
            "com.google.android.apps.magazines",
            "com.google.android.music",
        ],
    ),
    (
        "Samsung extras",
        "Bixby, Samsung Free, Game Launcher, AR Zone and other Samsung add-ons.",
        [
            "com.samsung.android.bixby.agent",
            "com.samsung.android.bixby.wakeup",
            "com.samsung.android.app.spage",
            "com.samsung.android.game.gamehome",
            "com.samsung.android.arzone",
            "com.samsung.android.app.tips",
            "com.samsung.android.aremoji",
        ],
    ),
    (
        "Social and office trials",
        "Preinstalled Facebook, Netflix and Office trials shipped by carriers.",
        [
            "com.facebook.katana",
            "com.facebook.system",
            "com.facebook.appmanager",
            "com.facebook.services",
            "com.netflix.mediaclient",
            "com.netflix.partner.activation",
            "com.microsoft.skydrive",
            "com.microsoft.office.officehubrow",
        ],
    ),
]

TWEAKS = [
    (
        "Kiosk display",
        "Screen stays on while plugged in; 30-minute screen timeout; no daydream.",
        [
            {"namespace": "global", "key": "stay_on_while_plugged_in", "value": "7"},
            {"namespace": "system", "key": "screen_off_timeout", "value": "1800000"},
            {"namespace": "secure", "key": "screensaver_enabled", "value": "0"},
        ],
    ),
    (
        "No animations",
        "Window, transition and animator scales at zero: snappier on low-end hardware.",
        [
            {"namespace": "global", "key": "window_animation_scale", "value": "0"},
            {"namespace": "global", "key": "transition_animation_scale", "value": "0"},
            {"namespace": "global", "key": "animator_duration_scale", "value": "0"},
        ],
    ),
    (
        "Quiet updates",
        "No automatic app updates over mobile data; no package verifier prompts over adb.",
        [
            {"namespace": "global", "key": "auto_time", "value": "1"},
            {"namespace": "global", "key": "auto_time_zone", "value": "1"},
            {"namespace": "global", "key": "verifier_verify_adb_installs", "value": "0"},
        ],
    ),
]


def seed(apps, schema_editor):
    BloatwarePreset = apps.get_model("enrollment", "BloatwarePreset")
    TweakPreset = apps.get_model("enrollment", "TweakPreset")
    for name, description, packages in BLOATWARE:
        BloatwarePreset.objects.get_or_create(name=name, defaults={"description": description, "packages": packages})
    for name, description, settings in TWEAKS:
        TweakPreset.objects.get_or_create(name=name, defaults={"description": description, "settings": settings})


class Migration(migrations.Migration):
    dependencies = [("enrollment", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
