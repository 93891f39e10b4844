"""The sandbox: emulators of every vendor API syncd talks to, for tests and `syncd demo`.

`faults` (request faults, rate limiter, webhook delivery faults) and `server` (serve an app on
a port) are shared; each vendor has a package (`wix`) exposing an emulator object whose `.app`
is an ASGI app usable in-process (`httpx.ASGITransport`) or on a real port.
"""
