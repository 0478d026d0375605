from django.apps import AppConfig


class ApksConfig(AppConfig):
    name = "apks"
    default_auto_field = "django.db.models.BigAutoField"
