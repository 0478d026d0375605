from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"
    default_auto_field = "django.db.models.BigAutoField"
