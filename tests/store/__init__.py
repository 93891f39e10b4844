"""Tests of the store: schema, migrations, column types, engines and their errors."""
