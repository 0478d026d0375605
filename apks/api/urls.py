from apks import device_api
from apks.api import views
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("apks", views.ReleaseViewSet, basename="api-apks")

urlpatterns = [
    *slash_optional("device/apks/<str:apk_id>/download", device_api.download, name="device-apk-download"),
    *router.urls,
]
