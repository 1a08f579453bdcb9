from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("propagation", "0002_job_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="propagationjob",
            name="session_ops",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
