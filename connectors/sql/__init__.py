"""The `sql` connector: a POS or membership database reached by a SQLAlchemy URL.

settings.py    the `[[connectors]]` keys of type "sql"
schema.py      the configured tables, reflected and checked; syncd's own two tables
client.py      the engine, and units of work run in a thread, retried, errors mapped
mapping.py     database errors and values → syncd's error tree and values
statements.py  reading accounts, creating them, writing deltas exactly once, reading back
changes.py     the change feed: by timestamp, or by a balance snapshot
connector.py   `SqlConnector`, the `connectors.base.Connector` port
emulator.py    `SqlTill`, a demo POS database and the till that changes it
"""
