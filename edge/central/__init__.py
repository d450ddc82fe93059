"""Central ingest: the reference consumer of the stations' MQTT sync (docs/mqtt.md).

``core`` is pure (URLs, sequence arithmetic, status payloads), ``store`` and its
SQLite and PostgreSQL back-ends keep the records idempotently, ``ingest`` is the
MQTT v5 client that stores batches and publishes acknowledgements, ``status``
serves a small JSON view, and ``cli`` adds ``edge central ...``.
"""
