from django.urls import re_path

from apks import device_api, tus
from apks.api import views
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("apks", views.ReleaseViewSet, basename="api-apks")
router.register("rollouts", views.RolloutViewSet, basename="api-rollouts")

UPLOAD = r"^uploads/(?P<upload_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"

urlpatterns = [
    *slash_optional("device/apks/<str:apk_id>/download", device_api.download, name="device-apk-download"),
    # tus 1.0 (apks/tus.py): the collection, one upload, and what became of it.
    re_path(r"^uploads/?$", tus.UploadCollection.as_view(), name="apks-uploads"),
    re_path(UPLOAD + r"/?$", tus.UploadResource.as_view(), name="apks-upload"),
    re_path(UPLOAD + r"/result/?$", tus.UploadResult.as_view(), name="apks-upload-result"),
    re_path(UPLOAD + r"/confirm-signer/?$", tus.ConfirmSigner.as_view(), name="apks-upload-confirm-signer"),
    *router.urls,
]
