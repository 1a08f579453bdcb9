from rest_framework.routers import DefaultRouter

from annotation_app.exports.api.views import ExportJobViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("export-jobs", ExportJobViewSet, basename="export-job")

urlpatterns = router.urls
