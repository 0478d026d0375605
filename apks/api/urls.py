from apks import device_api
from mdm.urlutil import slash_optional

urlpatterns = [
    *slash_optional("device/apks/<str:apk_id>/download", device_api.download, name="device-apk-download"),
]
