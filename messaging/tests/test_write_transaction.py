"""hot_sql.write_transaction: the persist step's transaction. On PostgreSQL at the top level
it sends BEGIN and COMMIT as statements inside pipeline mode (Django's atomic() would sync
the pipeline twice to switch autocommit); what it must keep is atomic()'s contract."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from messaging import hot_sql
from messaging.models import Conversation


def _conversation_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(Conversation._meta.db_table)}")
        return cursor.fetchone()[0]


def _insert_conversation(cursor, conversation_id: int) -> None:
    table = connection.ops.quote_name(Conversation._meta.db_table)
    cursor.execute(
        f"INSERT INTO {table} (id, type, pair_key, last_seq, last_message_preview, created_at, updated_at)"
        " VALUES (%s, 'single', %s, 0, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        [conversation_id, f"test-{conversation_id}"],
    )


@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_rolls_back_the_whole_transaction_and_leaves_the_connection_usable():
    before = _conversation_count()
    with pytest.raises(IntegrityError):
        with hot_sql.write_transaction():
            with hot_sql.cursor() as cursor:
                _insert_conversation(cursor, 9_000_001)
                _insert_conversation(cursor, 9_000_001)  # the same primary key again
    # Nothing of the block is stored, and the connection serves the next batch at once.
    assert _conversation_count() == before
    assert connection.get_autocommit()
    with hot_sql.write_transaction():
        with hot_sql.cursor() as cursor:
            _insert_conversation(cursor, 9_000_002)
    assert _conversation_count() == before + 1


@pytest.mark.django_db(transaction=True)
def test_an_exception_in_the_block_rolls_back_what_it_wrote():
    before = _conversation_count()
    with pytest.raises(RuntimeError):
        with hot_sql.write_transaction():
            with hot_sql.cursor() as cursor:
                _insert_conversation(cursor, 9_000_003)
            raise RuntimeError("a bug after the insert")
    assert _conversation_count() == before


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_it_is_a_savepoint_that_the_caller_can_still_roll_back():
    before = _conversation_count()
    with transaction.atomic():
        with hot_sql.write_transaction():
            with hot_sql.cursor() as cursor:
                _insert_conversation(cursor, 9_000_004)
        transaction.set_rollback(True)
    assert _conversation_count() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_transaction_is_two_round_trips_with_begin_and_commit_as_statements():
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        with hot_sql.write_transaction():
            pending = hot_sql.send_lock_conversations([1])
            pending.result()
    statements = [q["sql"] for q in captured.captured_queries]
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT", statements
    assert connection.connection.info.transaction_status == 0  # IDLE: nothing left open


@pytest.mark.django_db(transaction=True)
def test_on_commit_hooks_inside_run_after_the_commit_and_not_after_a_rollback():
    ran: list[str] = []
    with hot_sql.write_transaction():
        with hot_sql.cursor() as cursor:
            _insert_conversation(cursor, 9_000_005)
        transaction.on_commit(lambda: ran.append("committed"))
        assert ran == []  # not before the COMMIT
    assert ran == ["committed"]
    with pytest.raises(RuntimeError):
        with hot_sql.write_transaction():
            transaction.on_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("rolled back")
    assert ran == ["committed"]


@pytest.mark.django_db(transaction=True)
def test_row_locks_of_the_orm_work_inside(alice, bob):
    # select_for_update refuses to run outside a transaction: the attachment lock of the
    # persist step runs inside this one.
    from messaging.models import Conversation as C

    with hot_sql.write_transaction():
        assert list(C.objects.select_for_update().filter(id=-1)) == []
