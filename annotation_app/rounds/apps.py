from django.apps import AppConfig


class RoundsConfig(AppConfig):
    name = "annotation_app.rounds"
    label = "rounds"
