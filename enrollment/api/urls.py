from enrollment.api import device_views
from enrollment.api.views import EnrollmentKeyViewSet, ReenrollRequestViewSet
from mdm.urlutil import OptionalSlashRouter, slash_optional

router = OptionalSlashRouter()
router.register("enrollment-keys", EnrollmentKeyViewSet, basename="enrollment-key")
router.register("reenroll-requests", ReenrollRequestViewSet, basename="reenroll-request")

urlpatterns = [
    *slash_optional("enroll", device_views.enroll, name="enroll"),
    *router.urls,
]
