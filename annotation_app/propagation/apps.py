from django.apps import AppConfig


class PropagationConfig(AppConfig):
    name = "annotation_app.propagation"
    label = "propagation"
