"""The `square` connector: Square Loyalty accounts (and their Customers) as a syncd spoke.

settings.py   the `[[connectors]]` keys of type "square"
client.py     the REST client: budget, retries, idempotent writes, one `_call`
mapping.py    Square's wire shapes and errors → syncd's values and error tree
connector.py  `SquareConnector`, the `connectors.base.Connector` port
emulator/     `SquareEmulator`, the stateful sandbox double of the Square APIs used here

Facts about Square that the code relies on: the project's Square Loyalty fact sheet
(`apis/square-loyalty.md` in the shared docs).
"""
