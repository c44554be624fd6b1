"""Joins the three issue-10 migrations built side by side on 0004 (lifecycle, replies and
mentions, attachments); they touch different columns and tables, so order is free."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0005_message_lifecycle"),
        ("messaging", "0006_message_replies_mentions"),
        ("messaging", "0007_attachments"),
    ]

    operations = []
