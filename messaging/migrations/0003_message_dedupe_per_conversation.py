# The new constraint is added before the old one is dropped, so there is never a moment
# without one.

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0002_message_search'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='message',
            constraint=models.UniqueConstraint(fields=('conversation', 'sender', 'client_msg_id'), name='uniq_message_conversation_sender_client_id'),
        ),
        migrations.RemoveConstraint(
            model_name='message',
            name='uniq_message_sender_client_id',
        ),
    ]
