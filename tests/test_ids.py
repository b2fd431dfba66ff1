"""Message ids sort by time (index locality in the journal) yet stay UUIDs, and long
messages accepted together still get different concatenation references."""

import uuid

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
