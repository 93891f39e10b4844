"""The chaos harness: syncd under faults, SIGKILLs and a random workload, per seed, then
checked for every point — nothing lost, nothing doubled, no acknowledged webhook dropped.

    python -m tests.chaos --seeds 200                    # one daemon, SQLite
    python -m tests.chaos --replicas 3 --postgres URL    # three daemons sharing PostgreSQL

`world` is the shop (emulators, customers, workload, fault plan), `daemons` the syncd
processes and the webhook relay in front of them, `checks` the invariants, `harness` one run
per seed, `report` what is printed. `test_chaos` is the short CI version, `test_checks` shows
each check catching what it claims to, `test_findings` reproduces what the harness found.
"""
