"""The hot path's shortcuts answer exactly what the plain code answered: the GSM-7 check and
septet count as one regex scan, the XML escape's no-change fast path (one scan for a whole
report's values too), the memoized allow/deny network check, and message ids drawn from
pooled random bytes."""

from __future__ import annotations

import os
import random
import uuid
from xml.sax.saxutils import escape as sax_escape

import pytest

from appliance import accounts, ids
from appliance.gsm import alphabet
from appliance.gsm.errors import EncodingError
from appliance.web import ozeki_xml as X

SAMPLE = (alphabet.GSM_CHARACTERS + alphabet.EXTENSION_CHARACTERS + "\x1bÀé€ő😀\ud800\x00\x0b"
          "&<>\"'\t\n\r\ufffe")


def _plain_cost(text: str) -> int:
    return sum(alphabet.CHAR_COST[ch] for ch in text)


def test_gsm7_check_and_septet_count_match_the_character_table():
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(SAMPLE) for _ in range(rng.randint(0, 40)))
        fits = all(ch in alphabet.CHAR_COST for ch in text)
        assert alphabet.is_gsm7(text) is fits
        if fits:
            assert alphabet.septet_cost(text) == _plain_cost(text)
        else:
            with pytest.raises(EncodingError):
                alphabet.septet_cost(text)


def test_xml_escape_fast_path_matches_clean_then_escape():
    rng = random.Random(11)
    for _ in range(3000):
        text = "".join(rng.choice(SAMPLE) for _ in range(rng.randint(0, 30)))
        assert X.escape(text) == sax_escape(X.clean(text))
    assert X.element("n", 5) == "<n>5</n>" and X.element("n", "") == "<n />"
    assert X.element("n", "a&b", kind="x<y") == '<n kind="x&lt;y">a&amp;b</n>'


def test_elements_renders_what_element_renders_line_by_line():
    """X.elements scans all values once for anything to escape: the answer must be
    element()'s for each, empty values, ints, None and characters XML drops included."""
    rng = random.Random(12)
    choices = ["", None, 0, 7, "\x01", "\ud800\x00"] + list(SAMPLE)
    for _ in range(3000):
        pairs = [(f"n{i}", rng.choice(choices) if rng.random() < 0.3 else
                  "".join(rng.choice(SAMPLE) for _ in range(rng.randint(0, 6))))
                 for i in range(rng.randint(0, 8))]
        assert X.elements(*pairs) == "".join(X.element(n, v) + "\n" for n, v in pairs)


def _plain_echo(raw) -> dict:
    """ozeki_json._echo as it was written first: every field looked up in turn."""
    raw = raw if isinstance(raw, dict) else {}
    defaults = {"submit_report_requested": True, "delivery_report_requested": True,
                "view_report_requested": False, "tags": [], "message_type": "SMS:TEXT"}
    echo = {}
    for key in ("message_id", "from_connection", "from_address", "from_station",
                "to_connection", "to_address", "to_station", "text", "create_date",
                "valid_until", "time_to_send", "submit_report_requested",
                "delivery_report_requested", "view_report_requested", "tags", "message_type"):
        value = raw.get(key, raw.get("id", "") if key == "message_id" else defaults.get(key, ""))
        echo[key] = value if isinstance(value, (str, int, float, bool, list)) else ""
    return echo


def test_the_json_echo_of_a_message_is_the_plain_lookup_of_every_field():
    from appliance.web.ozeki_json import _echo
    rng = random.Random(13)
    keys = ["message_id", "id", "to_address", "text", "tags", "message_type", "status",
            "delivery_report_requested", "valid_until", "junk"]
    values = ["", "x", 0, 1.5, True, False, None, [], ["a"], {"k": 1}]
    for _ in range(3000):
        raw = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 6))}
        assert _echo(raw) == _plain_echo(raw)
        assert list(_echo(raw)) == list(_plain_echo(raw))
    for raw in (None, [], "text", 5):
        assert _echo(raw) == _plain_echo(raw)
    assert _echo({})["tags"] is not _echo({})["tags"]


def test_an_edited_allow_list_takes_effect_at_once():
    allow = ["10.0.0.0/8"]
    assert accounts.in_networks("10.1.2.3", allow)
    allow.append("192.168.1.0/24")
    assert accounts.in_networks("192.168.1.7", allow)
    allow.remove("10.0.0.0/8")
    assert not accounts.in_networks("10.1.2.3", allow)
    assert not accounts.in_networks("not an address", allow)
    assert not accounts.in_networks("10.1.2.3", ["bad entry"])


def test_ids_from_one_random_block_and_the_next_are_all_different_uuid7s():
    count = ids._BLOCK_IDS * 3 + 5
    made = [ids.new_message_id() for _ in range(count)]
    assert len(set(made)) == count
    assert all(uuid.UUID(m).version == 7 for m in made)


def test_a_forked_child_does_not_reuse_its_parents_random_bytes():
    ids.new_message_id()                       # the parent has a block in use
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                               # the child: its next id, then exit at once
        os.write(write, ids.new_message_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent_id = ids.new_message_id()
    assert child_id[-12:] != parent_id[-12:]


def _plain_segments(text: str, encoding, concat_16bit: bool):
    """segments as choose_encoding, septet_cost / unit_count and part_limits spell it."""
    from appliance.gsm import segment, ucs2
    encoding = segment.choose_encoding(text, encoding)
    total = alphabet.septet_cost(text) if encoding == "gsm7" else ucs2.unit_count(text)
    single, per_part = segment.part_limits(encoding, concat_16bit)
    if total <= single:
        return encoding, [text], total, single - total
    cost = alphabet.CHAR_COST.__getitem__ if encoding == "gsm7" else ucs2.code_units
    parts, used = segment._split(text, per_part, cost)
    return encoding, parts, total, per_part - used


def test_segments_plain_ascii_fast_path_matches_the_character_table():
    from appliance.gsm import segment
    rng = random.Random(13)
    ascii_sample = "".join(chr(c) for c in range(128))
    for _ in range(3000):
        pool = rng.choice([ascii_sample, ascii_sample[32:127], SAMPLE])
        text = "".join(rng.choice(pool) for _ in range(rng.choice([0, 5, 160, 161, 400])))
        for encoding in (None, "gsm7", "ucs2"):
            concat_16bit = rng.random() < 0.5
            try:
                plain = _plain_segments(text, encoding, concat_16bit)
            except EncodingError:
                with pytest.raises(EncodingError):
                    segment.split_text(text, encoding, concat_16bit)
                continue
            assert segment.split_text(text, encoding, concat_16bit) == plain
            seg = segment.segments(text, encoding=encoding, concat_16bit=concat_16bit)
            assert (seg.encoding, seg.parts, seg.units_used, seg.left_in_last_part) == plain


def test_number_digits_ascii_path_keeps_what_str_isdigit_keeps():
    from appliance.model import number_digits
    rng = random.Random(17)
    for _ in range(3000):
        number = "".join(rng.choice("0123456789+ -().*#x\t٣²") for _ in range(rng.randint(0, 16)))
        plain = number.strip()
        plain = plain[2:] if plain.startswith("00") else plain
        assert number_digits(number) == "".join(c for c in plain if c.isdigit())


def test_text_type_table_answers_what_the_type_grammar_does():
    import re
    from appliance.compose import parse_text_type
    from appliance.errors import ValidationError
    grammar = re.compile(r"SMS:TEXT(?::(GSM7BIT|UCS2))?(?::CLASS([0-3]))?")
    words = ["SMS", "sms", ":", "TEXT", "Text", "GSM7BIT", "ucs2", "CLASS", "class", "0", "3",
             "4", " ", ""]
    rng = random.Random(19)
    for _ in range(5000):
        name = "".join(rng.choice(words) for _ in range(rng.randint(0, 7)))
        match = grammar.fullmatch((name or "SMS:TEXT").strip().upper())
        if match is None:
            with pytest.raises(ValidationError):
                parse_text_type(name)
            continue
        encoding = {"GSM7BIT": "gsm7", "UCS2": "ucs2", None: None}[match.group(1)]
        msg_class = int(match.group(2)) if match.group(2) is not None else None
        assert parse_text_type(name) == (encoding, msg_class)
