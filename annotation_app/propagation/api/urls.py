from django.urls import path
from rest_framework.routers import DefaultRouter

from annotation_app.propagation.api.views import PropagationJobViewSet, TargetPropagateViewSet, WorkersView

router = DefaultRouter(trailing_slash=True)
router.register("propagation-jobs", PropagationJobViewSet, basename="propagation-job")

urlpatterns = [
    path(
        "targets/<int:pk>/propagate/",
        TargetPropagateViewSet.as_view({"post": "propagate"}),
        name="target-propagate",
    ),
    path("workers/", WorkersView.as_view(), name="workers"),
    *router.urls,
]
