"""The daemon (`syncd run`): webhook intake and polling mark links dirty; workers sync them.

webhook / poll ─▶ mark link dirty ─▶ worker: lease link ─▶ applier.sync ─▶ release
"""
