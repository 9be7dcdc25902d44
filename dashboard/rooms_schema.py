"""The Class rooms' database: where it is (SQLite under the app's data folder, or a shared PostgreSQL URL), how its
engine is set up (WAL, busy timeout, real transactions on SQLite) and its versioned schema with `migrate`.

No Streamlit here: the pages hand in `st.connection("class", type="sql", url=url_from(...), **engine_kwargs(url))`'s
`.engine`, and the tests a plain `sqlalchemy.create_engine`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

logger = logging.getLogger(__name__)

DB_ENV = "TOKENSCOPE_CLASS_DB"  # a SQLAlchemy URL; replicas behind a load balancer share one PostgreSQL URL
DB_FILE = "class-rooms.sqlite3"
SQLITE_BUSY_MS = 15_000  # a writer waits this long for another one's lock before "database is locked"
PG_CONNECT_TIMEOUT_S = 5  # a stopped or unreachable server answers within this, not after the OS's TCP timeout
MIGRATION_LOCK = 0x70C5C1A5  # PostgreSQL advisory lock id held while one replica migrates
SCHEMA_VERSION = 2

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: one row
    sa.Column("version", sa.Integer, nullable=False),
)

rooms = sa.Table(
    "class_rooms", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),  # sha256 hex of the teacher key; the key is never stored
    sa.Column("model_key", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # the teacher's text as given
    sa.Column("prompt_ids", sa.Text, nullable=False),  # JSON: token ids of the first round's text
    sa.Column("passage_ids", sa.Text, nullable=True),  # JSON: the true continuation's ids, when a passage was pasted
    sa.Column("created_at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("closed_at", sa.Float, nullable=True),
)

rounds = sa.Table(
    "class_rounds", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("room_id", sa.Integer, sa.ForeignKey("class_rooms.id", ondelete="CASCADE"), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),  # 0, 1, 2, ...
    sa.Column("text", sa.Text, nullable=False),  # the text so far (what the learners see)
    sa.Column("ids", sa.Text, nullable=False),  # JSON: its token ids
    sa.Column("state", sa.String(10), nullable=False),  # "open" (guessing) or "revealed"
    sa.Column("true_id", sa.Integer, nullable=True),  # the passage's next token, when known
    sa.Column("chosen_id", sa.Integer, nullable=True),  # the token Next appended
    sa.Column("chosen_text", sa.Text, nullable=True),
    sa.Column("chosen_by", sa.String(10), nullable=True),  # "true", "teacher" or "model"
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("revealed_at", sa.Float, nullable=True),
    sa.UniqueConstraint("room_id", "idx", name="uq_class_rounds_room_idx"),
    sa.CheckConstraint("state IN ('open', 'revealed')", name="ck_class_rounds_state"),
)

learners = sa.Table(
    "class_learners", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("room_id", sa.Integer, sa.ForeignKey("class_rooms.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),  # sha256 hex of the learner's session token
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.UniqueConstraint("room_id", "token_hash", name="uq_class_learners_token"),
)

guesses = sa.Table(
    "class_guesses", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("round_id", sa.Integer, sa.ForeignKey("class_rounds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("class_learners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # as typed (cleaned)
    sa.Column("token_id", sa.Integer, nullable=True),  # the model's token it maps to (dashboard/guessing.py)
    sa.Column("shown", sa.Text, nullable=True),  # that token with ␣ for a leading space
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("round_id", "learner_id", name="uq_class_guesses_round_learner"),  # one guess each
)

# Version 2: the indexes that expiry and a round's guess count read through (plain DDL, so that the tables' own
# create in version 1 does not make them too). Both dialects know CREATE INDEX IF NOT EXISTS.
V2_INDEXES = {
    "ix_class_rooms_expires_at": "class_rooms (expires_at)",
    "ix_class_guesses_round": "class_guesses (round_id)",
}
V1_TABLES = (rooms, rounds, learners, guesses)


def _to_v1(conn) -> None:
    """Create the four tables."""
    for table in V1_TABLES:
        table.create(conn, checkfirst=True)


def _to_v2(conn) -> None:
    """Add the expiry and guess-count indexes."""
    for name, on in V2_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


MIGRATIONS: dict[int, Callable] = {1: _to_v1, 2: _to_v2}  # version n is reached by MIGRATIONS[n] from n - 1


# --------------------------------------------------------------------------- where the database is


def default_url(data_dir: str | Path | None = None) -> str:
    """The embedded SQLite file's URL under `data_dir` (default: the app's data folder, $TOKENSCOPE_CACHE)."""
    if data_dir is None:
        from dashboard.weights import cache_root  # the folder the app already keeps its files in

        data_dir = cache_root()
    folder = Path(data_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / DB_FILE).resolve()}"


def url_from(secrets: Mapping | None = None, environ: Mapping | None = None, data_dir: str | Path | None = None) -> str:
    """The rooms database URL: $TOKENSCOPE_CLASS_DB, else secrets' `[connections.class] url`, else the SQLite file."""
    environ = os.environ if environ is None else environ
    url = (environ.get(DB_ENV) or "").strip()
    if not url and secrets:
        section = secrets.get("connections", {}).get("class", {}) if "connections" in secrets else secrets
        url = str(section.get("url") or "").strip()
    if not url:
        return default_url(data_dir)
    parsed = make_url(url)  # raises ArgumentError on a malformed URL (the message has no password)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"{DB_ENV}: only sqlite and postgresql URLs are supported, not {parsed.get_backend_name()!r}")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def safe_url(url) -> str:
    """`url` (a string or URL) with its password replaced by ***: fit for a message or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is not shown at all
        return "(an unreadable database URL)"


def engine_kwargs(url: str) -> dict:
    """create_engine keyword arguments for `url`: pool_pre_ping, and a connect or busy timeout."""
    backend = make_url(url).get_backend_name()
    kwargs: dict = {"pool_pre_ping": True}
    if backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    elif backend == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_MS / 1000}
    return kwargs


def make_engine(url: str) -> Engine:
    """A prepared engine for `url` (outside Streamlit: tests, scripts)."""
    return prepare(sa.create_engine(url, **engine_kwargs(url)))


# --------------------------------------------------------------------------- engine set-up


def _set_wal(cursor) -> None:
    """Put the SQLite file in WAL mode (it stays so); a new file that other connections hold is retried a while."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:  # the switch needs the file to itself and does not wait on the busy timeout
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def prepare(engine: Engine) -> Engine:
    """`engine`, with SQLite's WAL, busy timeout, foreign keys and real (IMMEDIATE) write transactions set on every
    connection it opens; idempotent, a no-op on PostgreSQL."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_tokenscope_prepared", False):
        return engine

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN handling off: SQLAlchemy's "begin" below decides
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # a read-then-write transaction takes the write lock first: no lock upgrade that fails without waiting
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    engine._tokenscope_prepared = True
    engine.dispose()  # connections opened before the listeners were set are not reused
    return engine


# --------------------------------------------------------------------------- the versioned schema


def current_version(conn) -> int:
    """The schema version recorded in the database (0 when there is none yet)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    return int(value or 0)


def migrate(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """The schema version after creating or upgrading the schema to `target`; idempotent, and safe when two
    replicas call it at once (PostgreSQL: an advisory lock; SQLite: the write lock), each step in one transaction."""
    if target not in range(1, SCHEMA_VERSION + 1):
        raise ValueError(f"target: no schema version {target!r} (1..{SCHEMA_VERSION})")
    prepare(engine)
    with engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            schema_version.create(conn, checkfirst=True)
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"the rooms database has schema version {version}, newer than this app's "
                                   f"{SCHEMA_VERSION}: upgrade the app")
            for step in range(version + 1, target + 1):
                MIGRATIONS[step](conn)
                logger.info("rooms schema migrated to version %d", step)
            if target > version:
                if version == 0:
                    conn.execute(sa.insert(schema_version).values(id=1, version=target))
                else:
                    conn.execute(sa.update(schema_version).where(schema_version.c.id == 1).values(version=target))
            return max(version, target)
