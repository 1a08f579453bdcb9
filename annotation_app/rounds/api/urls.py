from rest_framework.routers import DefaultRouter

from annotation_app.rounds.api.views import ModelVersionViewSet, RoundViewSet, TrainingRunViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("rounds", RoundViewSet, basename="round")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("training-runs", TrainingRunViewSet, basename="training-run")

urlpatterns = router.urls
