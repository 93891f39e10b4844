"""Alembic migrations of the store, shipped inside the package; run by `syncd.store.db.upgrade`.

New revision (after changing `syncd.store.models`):

    from alembic import command
    from syncd.store.db import alembic_config
    command.revision(alembic_config(url="sqlite:///scratch.db"), autogenerate=True, message="...")

then edit the generated file: plain `sa.*` types (not `syncd.store.types`), named constraints.
"""
