from django.urls import path
from rest_framework.routers import DefaultRouter

from annotation_app.timing.api.views import TargetTimingViewSet, TimingReportViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("target-timings", TargetTimingViewSet, basename="target-timing")

urlpatterns = [
    *router.urls,
    path("timing-report/", TimingReportViewSet.as_view({"get": "report"}), name="timing-report"),
]
