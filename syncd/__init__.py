"""syncd keeps loyalty-point balances equal between Wix and external systems, as a ledger."""

__version__ = "0.1.0"
