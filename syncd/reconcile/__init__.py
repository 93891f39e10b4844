"""The one-shot backfill (`syncd --reconcile`): stage both sides, match, plan, apply, report."""
