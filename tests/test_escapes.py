"""The XML and HTML escapes written out in the web layer (to keep xml.sax and html out of
the daemon's memory) answer exactly what the library functions answered before."""

import html
import random
from xml.sax.saxutils import escape, quoteattr

from appliance.web import ozeki_xml as X
from appliance.web.ozeki import H

CHARS = ["&", "<", ">", '"', "'", "\n", "\r", "\t", "a", "é", "\x01", "😀", "&amp;"]


def samples(count: int = 5000):
    rng = random.Random(1234)
    yield from ("", "plain", "&<>\"'", "\"both'", "'single only", "\"double only")
    for _ in range(count):
        yield "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 10)))


def test_xml_text_and_attributes_match_saxutils():
    for text in samples():
        assert X.escape(text) == escape(X.clean(text)), repr(text)
        assert X.quoteattr(text) == quoteattr(X.clean(text)), repr(text)


def test_the_html_escape_matches_the_library():
    for text in samples():
        assert H(text) == html.escape(text), repr(text)
