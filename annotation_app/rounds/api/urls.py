from rest_framework.routers import DefaultRouter

from annotation_app.rounds.api.views import (
    HeldOutCaseViewSet,
    ModelActivationViewSet,
    ModelVersionViewSet,
    RoundViewSet,
    TrainingRunViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("rounds", RoundViewSet, basename="round")
router.register("held-out-cases", HeldOutCaseViewSet, basename="held-out-case")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("model-activations", ModelActivationViewSet, basename="model-activation")
router.register("training-runs", TrainingRunViewSet, basename="training-run")

urlpatterns = router.urls
