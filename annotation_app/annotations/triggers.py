"""The database itself refuses UPDATE and DELETE of mask revisions and interaction events.

Postgres gets its triggers from migration 0002. The embedded SQLite default gets the same rule from
migration 0004 and again after every `migrate` (a post_migrate handler): SQLite rebuilds a table for
many schema changes, and a rebuilt table has lost its triggers.
"""

TABLES = ("annotations_maskrevision", "annotations_interactionevent")


def sqlite_statements(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_{event.lower()} BEFORE {event} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'rows of {table} are append-only'); END;"
        for event in ("UPDATE", "DELETE")
    ]


def ensure_sqlite_triggers(connection) -> None:
    if connection.vendor != "sqlite":
        return
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in TABLES:
            if table in existing:
                for statement in sqlite_statements(table):
                    cursor.execute(statement)


def drop_sqlite_triggers(connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for table in TABLES:
            for event in ("update", "delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{event};")


def on_post_migrate(using="default", **kwargs) -> None:
    from django.db import connections

    ensure_sqlite_triggers(connections[using])
