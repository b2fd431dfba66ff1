"""Durable storage: SQLite journal (messages, parts, reports, inbox, ledger, callbacks) and
the TinyDB document store (users, connections, address book)."""
