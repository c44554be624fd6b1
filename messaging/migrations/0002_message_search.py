"""Full-text search over message content (used by tasks.search).

PostgreSQL: a GIN index on the exact expression tasks.search.postgres queries,
to_tsvector('simple', COALESCE(content, '')), maintained by PostgreSQL on insert.
SQLite: an FTS5 virtual table message_fts (rowid = message id) that the index task
keeps; existing messages are copied in here. Other engines get nothing.
"""
from django.db import migrations

PG_INDEX = "message_content_fts_gin"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON messaging_message "
            "USING gin (to_tsvector('simple'::regconfig, COALESCE(content, '')))"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
            "content, conversation_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
        )
        schema_editor.execute(
            "INSERT INTO message_fts (rowid, content, conversation_id) "
            "SELECT id, content, conversation_id FROM messaging_message WHERE status = 'normal'"
        )


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS message_fts")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
