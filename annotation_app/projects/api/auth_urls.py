"""/api/auth/: JSON sign-in, sign-out and the current user (token sign-in is in the root urls)."""

from annotation_app.projects.api.urls import auth_urlpatterns

urlpatterns = auth_urlpatterns
