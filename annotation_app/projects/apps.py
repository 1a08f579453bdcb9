from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "annotation_app.projects"
    label = "projects"
