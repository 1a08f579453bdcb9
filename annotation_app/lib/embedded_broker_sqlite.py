"""The other embedded-broker candidate: kombu's SQLAlchemy transport on an SQLite file in VAR_DIR.

Transactional (kombu takes a message under `BEGIN IMMEDIATE`, so no half-written message can be read),
tuned here for the embedded default: the file (transport option `sqlite_path`) in WAL mode with a 30 s
busy timeout, polling every `polling_interval` seconds (0.1 in the embedded settings).
Measured against the atomic filesystem transport by benchmarks/bench_embedded_broker.py (README,
"Embedded broker"); selected with EMBEDDED_BROKER=sqlite. Needs SQLAlchemy, which the project does not
install (`pip install SQLAlchemy` first), so the classes are built on first use: importing this module
needs nothing.
"""

from __future__ import annotations

_built: dict[str, type] = {}


def _build() -> dict[str, type]:
    if _built:
        return _built
    from kombu.transport import sqlalchemy as kombu_sqla
    from sqlalchemy import create_engine, event

    class Channel(kombu_sqla.Channel):
        def _engine_from_config(self):
            path = self.connection.client.transport_options["sqlite_path"]
            engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            return engine

    class Transport(kombu_sqla.Transport):
        polling_interval = 0.1

    Transport.Channel = Channel
    _built.update(Channel=Channel, Transport=Transport)
    return _built


def __getattr__(name: str):
    if name in ("Channel", "Transport"):
        return _build()[name]
    raise AttributeError(name)
