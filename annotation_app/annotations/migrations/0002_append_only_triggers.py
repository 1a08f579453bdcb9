"""On Postgres, refuse UPDATE and DELETE of mask revisions and interaction events in the database
itself, so not even a raw query or a bulk `QuerySet.update()` can change what users made."""
from django.db import migrations

TABLES = ["annotations_maskrevision", "annotations_interactionevent"]

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION refuse_append_only_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # A plain cursor: the function body's "%" must not be taken for a query parameter.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(CREATE_FUNCTION)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
