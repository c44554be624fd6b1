"""Attachments (issue 10): uploads stored through the "attachments" storage, linked to a message on send."""

import django.db.models.deletion
import gochat_site.ids
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0004_message_fts_triggers'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Attachment',
            fields=[
                ('id', models.BigIntegerField(default=gochat_site.ids.new_id, editable=False, primary_key=True, serialize=False)),
                ('storage_name', models.CharField(max_length=500)),
                ('thumbnail_name', models.CharField(blank=True, max_length=500)),
                ('name', models.CharField(max_length=255)),
                ('size', models.BigIntegerField()),
                ('content_type', models.CharField(max_length=100)),
                ('width', models.PositiveIntegerField(blank=True, null=True)),
                ('height', models.PositiveIntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('message', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attachment', to='messaging.message')),
                ('uploader', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attachments', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('message__isnull', True)), fields=['created_at'], name='attachment_orphan_created')],
            },
        ),
    ]
