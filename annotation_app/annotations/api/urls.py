from rest_framework.routers import DefaultRouter

from annotation_app.annotations.api.views import (
    EventViewSet,
    MaskRevisionViewSet,
    PromptViewSet,
    SliceCommentViewSet,
    TargetViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("targets", TargetViewSet, basename="target")
router.register("prompts", PromptViewSet, basename="prompt")
router.register("mask-revisions", MaskRevisionViewSet, basename="mask-revision")
router.register("events", EventViewSet, basename="interaction-event")
router.register("slice-comments", SliceCommentViewSet, basename="slice-comment")

urlpatterns = router.urls
