"""The engine: the pure sync rules, the outbox and the applier that carries plans out."""
