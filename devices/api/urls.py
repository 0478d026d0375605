from devices.api import device_views
from devices.api.views import DeviceViewSet, GroupViewSet, TagViewSet
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("devices", DeviceViewSet, basename="device")
router.register("groups", GroupViewSet, basename="group")
router.register("tags", TagViewSet, basename="tag")

urlpatterns = [
    *slash_optional("device/heartbeat", device_views.heartbeat, name="device-heartbeat"),
    *slash_optional("device/inventory", device_views.inventory, name="device-inventory"),
    *router.urls,
]
