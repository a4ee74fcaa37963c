"""The local environment: a private PostgreSQL + TimescaleDB cluster and Mosquitto brokers on
loopback (for `shopfloor db`, the demo and the tests), and which database a command uses.

Not the product's runtime: a plant may give its own database URL and broker and never start
either. Depends on `config` only.
"""
