"""The store: links with their bases, the operation outbox, cursors, inbox events, conflicts.

`db` makes engines and sessions and upgrades the schema; `models` holds the tables;
`migrations` the Alembic history that builds them.
"""
