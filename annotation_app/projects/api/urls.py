from django.urls import path
from rest_framework.routers import DefaultRouter

from annotation_app.projects.api.auth import LoginView, LogoutView, MeView
from annotation_app.projects.api.views import MembershipViewSet, ProjectViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("projects", ProjectViewSet, basename="project")
router.register("memberships", MembershipViewSet, basename="membership")

auth_urlpatterns = [
    path("login/", LoginView.as_view(), name="api-login"),
    path("logout/", LogoutView.as_view(), name="api-logout"),
    path("me/", MeView.as_view(), name="api-me"),
]

urlpatterns = router.urls
