"""The security audit log: an append-only table, each row also published as an event.

``service.record`` writes one row in the caller's transaction and the matching
``gov.tongban.identity.security.<type>.v1`` event through the outbox, so the log, the effect
and the event commit together or not at all. The database refuses UPDATE, DELETE and TRUNCATE
on the table (a trigger created by migration 0004).
"""
