from rest_framework.routers import DefaultRouter

from annotation_app.pacs.api.views import ConnectionViewSet, ImportViewSet, SendViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("pacs/connections", ConnectionViewSet, basename="pacs-connection")
router.register("pacs/imports", ImportViewSet, basename="pacs-import")
router.register("pacs/sends", SendViewSet, basename="pacs-send")

urlpatterns = router.urls
