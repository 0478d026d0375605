from commands import device_api
from commands.api import views
from commands.policies import api as policy_api
from commands.policies import device_api as policy_device_api
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("commands", views.CommandViewSet, basename="api-commands")
router.register("command-presets", views.PresetViewSet, basename="api-command-presets")
router.register("shell-allowlist", views.ShellAllowRuleViewSet, basename="api-shell-allowlist")
router.register("wifi-configs", views.WifiConfigViewSet, basename="api-wifi-configs")
router.register("policies", policy_api.PolicyViewSet, basename="api-policies")

urlpatterns = [
    *slash_optional("device/commands", device_api.pull, name="device-commands"),
    *slash_optional("device/commands/<str:command_id>/result", device_api.result, name="device-command-result"),
    *slash_optional("device/policy", policy_device_api.policy, name="device-policy"),
    *slash_optional("device/policy/status", policy_device_api.status, name="device-policy-status"),
    *router.urls,
]
