from enrollment.api import device_views
from enrollment.api.views import EnrollmentKeyViewSet
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("enrollment-keys", EnrollmentKeyViewSet, basename="enrollment-key")

urlpatterns = [
    *slash_optional("enroll", device_views.enroll, name="enroll"),
    *router.urls,
]
