"""Append-only on the embedded SQLite default too (Postgres has had triggers since 0002), and a mask
revision's author PROTECTs: deleting a user can neither null nor remove what they drew."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def create_sqlite_triggers(apps, schema_editor):
    from annotation_app.annotations.triggers import ensure_sqlite_triggers

    ensure_sqlite_triggers(schema_editor.connection)


def drop_sqlite_triggers(apps, schema_editor):
    from annotation_app.annotations.triggers import drop_sqlite_triggers

    drop_sqlite_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_review_comments_location"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="maskrevision",
            name="author",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(create_sqlite_triggers, drop_sqlite_triggers),
    ]
