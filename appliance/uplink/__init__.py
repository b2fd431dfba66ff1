"""The SMPP uplink: one worker thread per aggregator connection (see smpp.py).

Only `smpp.py` imports smpplib. The other modules are pure: `receipts` reads delivery
receipts and normalises message ids, `codec` turns parts into submit_sm fields and
deliver_sm fields into inbound fragments, `window` keeps the submit_sm in flight,
`backoff` spaces reconnects, `bind_fields` knows SMPP's lengths for a bind's fields.
"""
