from django.apps import AppConfig


class MdmConfig(AppConfig):
    name = "mdm"
    verbose_name = "MDM core"

    def ready(self):
        from mdm import metrics  # noqa: F401  (registers the collectors)
