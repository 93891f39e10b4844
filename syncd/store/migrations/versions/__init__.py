"""Revision files, oldest first by number (Alembic skips this `__init__`)."""
