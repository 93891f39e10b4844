"""Connectors to the systems syncd keeps in step with Wix (one package per system)."""
