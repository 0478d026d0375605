from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # devices/ sits below commands/ and calls up through its hook points (devices.hooks).
        from commands import device_hooks

        device_hooks.register()
