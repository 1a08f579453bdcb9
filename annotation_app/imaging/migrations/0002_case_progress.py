from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imaging", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="case",
            name="progress",
            field=models.FloatField(default=0.0, help_text="ingest progress, 0..1"),
        ),
    ]
