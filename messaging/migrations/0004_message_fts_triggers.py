"""SQLite: triggers keep message_fts (migration 0002) in step with messaging_message.

Every way a message is written (logic, seed_demo, REST, gRPC, admin, a plain UPDATE)
then lands in the search index in the same transaction as the row, with no index task
per message. A message is in the index exactly while its status is 'normal'. The table
is rebuilt once here, so messages written before the triggers (seed_demo's, whose
index task never ran) become searchable. PostgreSQL needs nothing: its GIN expression
index (0002) is maintained by the database. Other engines get nothing.
"""
from django.db import migrations

TRIGGERS = {
    "message_fts_after_insert": (
        "CREATE TRIGGER IF NOT EXISTS message_fts_after_insert AFTER INSERT ON messaging_message "
        "WHEN new.status = 'normal' BEGIN "
        "INSERT INTO message_fts (rowid, content, conversation_id) VALUES (new.id, new.content, new.conversation_id); "
        "END"
    ),
    # Edits and recalls: the old entry goes, the new one comes back if still 'normal'.
    "message_fts_after_update": (
        "CREATE TRIGGER IF NOT EXISTS message_fts_after_update AFTER UPDATE OF content, status ON messaging_message "
        "BEGIN "
        "DELETE FROM message_fts WHERE rowid = old.id; "
        "INSERT INTO message_fts (rowid, content, conversation_id) "
        "SELECT new.id, new.content, new.conversation_id WHERE new.status = 'normal'; "
        "END"
    ),
    "message_fts_after_delete": (
        "CREATE TRIGGER IF NOT EXISTS message_fts_after_delete AFTER DELETE ON messaging_message "
        "BEGIN DELETE FROM message_fts WHERE rowid = old.id; END"
    ),
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for sql in TRIGGERS.values():
        schema_editor.execute(sql)
    schema_editor.execute("DELETE FROM message_fts")
    schema_editor.execute(
        "INSERT INTO message_fts (rowid, content, conversation_id) "
        "SELECT id, content, conversation_id FROM messaging_message WHERE status = 'normal'"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0003_message_dedupe_per_conversation")]

    operations = [migrations.RunPython(forwards, backwards)]
