from django.urls import path
from rest_framework.routers import DefaultRouter

from annotation_app.imaging.api.assignment import CaseAssignmentViewSet
from annotation_app.imaging.api.views import CaseViewSet, ProjectExportView
from annotation_app.imaging.api.windows import WindowPresetsView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    path("cases/assign/", CaseAssignmentViewSet.as_view({"post": "assign"}), name="case-assign"),
    path("projects/<int:pk>/export/", ProjectExportView.as_view(), name="project-export"),
    path("windows/", WindowPresetsView.as_view(), name="window-presets"),
    *router.urls,
]
