from commands import device_api
from commands.api import views
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("commands", views.CommandViewSet, basename="api-commands")
router.register("command-presets", views.PresetViewSet, basename="api-command-presets")
router.register("shell-allowlist", views.ShellAllowRuleViewSet, basename="api-shell-allowlist")
router.register("wifi-configs", views.WifiConfigViewSet, basename="api-wifi-configs")

urlpatterns = [
    *slash_optional("device/commands", device_api.pull, name="device-commands"),
    *slash_optional("device/commands/<str:command_id>/result", device_api.result, name="device-command-result"),
    *router.urls,
]
