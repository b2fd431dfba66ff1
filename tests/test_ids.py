"""Message ids sort by time (index locality in the journal) yet stay UUIDs, and long
messages accepted together still get different concatenation references."""

import ast
import os
import uuid

from appliance import ids
from appliance.compose import Submission, prepare
from appliance.ids import new_message_id
from appliance.store.accepting import concat_ref as _concat_ref


def test_ids_are_version_7_uuids_ordered_by_their_millisecond():
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    millis = [u.int >> 80 for u in parsed]
    assert millis == sorted(millis)


def test_messages_accepted_in_the_same_second_get_different_concat_references():
    refs = {_concat_ref(prepare(Submission(user="admin", recipient="+36201234567",
                                           text="x" * 300)).id) for _ in range(200)}
    assert len(refs) > 50 and all(1 <= r <= 255 for r in refs)


def test_ids_are_spelled_exactly_as_the_uuid_module_spells_them():
    for _ in range(500):
        text = new_message_id()
        assert str(uuid.UUID(text)) == text and len(text) == 36


def test_a_forked_child_draws_random_bits_of_its_own():
    ids._random_80_bits()                 # this thread now holds a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                          # the child: its next draws, then out
        try:
            os.write(write, repr([ids._random_80_bits() for _ in range(5)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = [ids._random_80_bits() for _ in range(5)]
    with os.fdopen(read) as pipe:
        child = ast.literal_eval(pipe.read())
    os.waitpid(pid, 0)
    assert len(child) == 5 and not set(child) & set(parent)
