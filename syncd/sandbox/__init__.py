"""The sandbox: emulators of every vendor API syncd talks to, for tests and `syncd demo`.

Each vendor has a package (`syncd.sandbox.wix`, `connectors.square.emulator`) exposing an
emulator object whose `.app` is an ASGI app usable in-process (`httpx.ASGITransport`) or on a
real port. The package holds only what is that vendor's: routes, wire shapes, rules, auth
scheme, error bodies, webhook format and signature. The machinery they share lives here,
in the order a request meets it:

    emulator   `SandboxEmulator`: seed, clocks, knobs, rate limiter, reseed / reset
    ids        seeded id factories (the same ids on every run)
    app        the ASGI app: request ids, vendor 404s, lifespan running the webhook sender
    gate       count -> delay -> auth -> rate limit -> faults -> handler -> faults after commit
    faults     request faults, the sliding-window limiter, webhook delivery faults
    errors     `ApiError`, the base of each vendor's refusal
    wire       the clock type, JSON request bodies, millisecond timestamps
    stats      request counters for the admin `stats` route
    delivery   the webhook dispatcher: queue, delivery faults, retries, attempt log, sender
    admin      `/_sandbox/` routes: knobs, reset, stats, webhook flush and log
    knobs      read and patch an emulator's knobs as JSON
    server     serve an app on a port (a thread for tests, several for the CLI)
"""
