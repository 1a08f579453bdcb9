from django import forms
from django.contrib import admin

from annotation_app.pacs.models import DicomWebConnection, PacsImport, SegSend


class ConnectionForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Never shown again; leave empty to keep the stored one.",
    )

    class Meta:
        model = DicomWebConnection
        fields = ["name", "project", "qido_url", "wado_url", "stow_url", "username", "password"]

    def clean_password(self):
        value = self.cleaned_data.get("password")
        if not value and self.instance.pk:
            return self.instance.password
        return value or ""


@admin.register(DicomWebConnection)
class DicomWebConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "project", "qido_url", "stow_url"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(PacsImport)
class PacsImportAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "series_uid", "status", "progress", "case"]
    list_filter = ["status"]


@admin.register(SegSend)
class SegSendAdmin(admin.ModelAdmin):
    list_display = ["id", "target", "revision", "connection", "status", "attempts", "sent_at"]
    list_filter = ["status"]
