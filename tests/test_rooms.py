"""The Class rooms' store (dashboard/rooms.py, rooms_schema.py) on SQLite and on a real PostgreSQL server
(tests/pg.py): schema versions, one guess per learner per round under concurrency, the teacher key, expiry,
text validation, the join rate limit and a database that goes away mid-game."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from dashboard import rooms_schema as schema
from dashboard.rooms import (CODE_ALPHABET, MAX_GUESS, MAX_NAME, JoinLimiter, NotLearner, NotTeacher, RateLimited,
                             RoomClosed, RoomNotFound, RoomStore, RoomsUnavailable, RoundClosed, clean_text,
                             new_code, normalise_code)
import pg
from pg import db_url, pg_server, pg_url  # noqa: F401  (fixtures)


class Clock:
    """A settable clock for expiry."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url):
    eng = schema.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(engine, clock):
    s = RoomStore(engine, clock=clock)
    assert s.migrate() == schema.SCHEMA_VERSION
    return s


def _room(store, passage=(262, 3139)):
    """A room on 'The capital of France is' with a two-token passage: (code, teacher key)."""
    return store.create_room("gpt2", "The capital of France is", [464, 3139, 286, 4881, 318], list(passage))


def _indexes(engine) -> set[str]:
    insp = sa.inspect(engine)
    return {ix["name"] for t in ("class_rooms", "class_guesses") for ix in insp.get_indexes(t)}


# --------------------------------------------------------------------------- schema


def test_migrate_twice_is_a_no_op(engine, store):
    code, _ = _room(store)
    assert schema.migrate(engine) == schema.SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.schema_version)).all() == [(1, schema.SCHEMA_VERSION)]
    assert store.public_state(code)["round"] == 0


def test_a_version_1_database_is_upgraded_to_2_keeping_its_rooms(engine, clock):
    assert schema.migrate(engine, target=1) == 1
    assert not set(schema.V2_INDEXES) & _indexes(engine)
    store = RoomStore(engine, clock=clock)
    code, key = _room(store)  # a room made while the database is at version 1
    assert schema.migrate(engine) == 2
    assert set(schema.V2_INDEXES) <= _indexes(engine)
    with engine.connect() as conn:
        assert schema.current_version(conn) == 2
    assert store.teacher_state(code, key)["text"] == "The capital of France is"


def test_a_database_newer_than_the_app_is_refused(engine, store):
    with engine.begin() as conn:
        conn.execute(sa.update(schema.schema_version).values(version=schema.SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match="newer than this app"):
        schema.migrate(engine)


def test_replicas_migrating_at_once_make_one_schema(db_url, tmp_path):
    """Eight replicas (each its own engine) start on a new database at once (on SQLite, three new files in a row)."""
    urls = [db_url] if db_url.startswith("postgresql") else [schema.default_url(tmp_path / str(i)) for i in range(3)]
    for url in urls:
        engines = [schema.make_engine(url) for _ in range(8)]
        results, errors, barrier = [], [], threading.Barrier(len(engines))

        def replica(eng):
            barrier.wait()
            try:
                results.append(schema.migrate(eng))
            except Exception as exc:  # noqa: BLE001 (collected for the assert)
                errors.append(exc)

        threads = [threading.Thread(target=replica, args=(e,)) for e in engines]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        assert errors == [] and results == [schema.SCHEMA_VERSION] * 8
        with engines[0].connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.schema_version)).scalar() == 1
        [e.dispose() for e in engines]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    eng = schema.make_engine(schema.default_url(tmp_path))
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == schema.SQLITE_BUSY_MS
    eng.dispose()


def test_the_default_database_is_a_file_in_the_apps_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENSCOPE_CACHE", str(tmp_path / "data"))
    monkeypatch.delenv(schema.DB_ENV, raising=False)
    assert schema.url_from() == f"sqlite:///{(tmp_path / 'data' / schema.DB_FILE).resolve()}"
    assert (tmp_path / "data").is_dir()


def test_a_new_sqlite_file_another_process_is_writing_still_goes_to_wal(tmp_path):
    """Switching a new file to WAL fails at once, without the busy timeout, while another connection writes (one
    replica's start in ten failed so when replicas started together): the switch is retried until it can be made."""
    url = schema.default_url(tmp_path)
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE busy (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO busy VALUES (1)")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    eng = schema.make_engine(url)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    eng.dispose()
    other.close()


def test_url_from_env_then_secrets_then_the_sqlite_file(tmp_path):
    pg = "postgresql://u:s3cret@db.example/class"
    assert schema.url_from({}, {schema.DB_ENV: pg}, tmp_path) == "postgresql+psycopg://u:s3cret@db.example/class"
    assert schema.url_from({"connections": {"class": {"url": "sqlite:///x.db"}}}, {}, tmp_path) == "sqlite:///x.db"
    assert schema.url_from({}, {}, tmp_path) == f"sqlite:///{tmp_path.resolve() / schema.DB_FILE}"
    assert "s3cret" not in schema.safe_url(pg)
    with pytest.raises(ValueError, match="only sqlite and postgresql"):
        schema.url_from({}, {schema.DB_ENV: "mysql://u:p@h/d"}, tmp_path)


# --------------------------------------------------------------------------- one guess per learner per round


def test_forty_learners_guessing_at_once_each_stored_once_the_latest_counting(store):
    code, key = _room(store)
    learners = [store.join(code)[0] for _ in range(40)]
    barrier, errors = threading.Barrier(40), []

    def learner(i, token):
        try:
            barrier.wait()
            for attempt in range(3):
                store.guess(code, token, 0, f"guess {i} try {attempt}", token_id=i + attempt)
        except Exception as exc:  # noqa: BLE001 (collected for the assert)
            errors.append(exc)

    threads = [threading.Thread(target=learner, args=(i, t)) for i, t in enumerate(learners)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert errors == []
    assert store.count_guesses(code) == 40
    store.reveal(code, key, 0)
    state = store.teacher_state(code, key)
    ids = {row["id"]: row["name"] for row in state["learners"]}
    got = {ids[g["learner_id"]]: (g["text"], g["token_id"]) for g in state["guesses"]}
    assert len(state["guesses"]) == 40
    assert got == {f"Learner {i + 1}": (f"guess {i} try 2", i + 2) for i in range(40)}


def test_the_database_itself_rejects_a_second_guess_row(engine, store):
    code, _ = _room(store)
    token, _ = store.join(code)
    store.guess(code, token, 0, "Paris", 6342)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.guesses)).one()._asdict()
    row.pop("id")
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.guesses).values(**row))


def test_a_guess_after_the_reveal_is_refused_and_racing_guesses_never_land_after_it(store):
    code, key = _room(store)
    tokens = [store.join(code)[0] for _ in range(8)]
    last_ok, stop = {}, threading.Event()

    def learner(token):
        n = 0
        while not stop.is_set() and n < 2000:
            try:
                store.guess(code, token, 0, f"g{n}")
                last_ok[token] = f"g{n}"
            except RoundClosed:
                return
            n += 1
            time.sleep(0.002)

    threads = [threading.Thread(target=learner, args=(t,)) for t in tokens]
    [t.start() for t in threads]
    while len(last_ok) < len(tokens):
        time.sleep(0.005)
    store.reveal(code, key, 0)
    at_reveal = {g["text"] for g in store.teacher_state(code, key)["guesses"]}
    [t.join(60) for t in threads]
    stop.set()
    assert not any(t.is_alive() for t in threads)
    assert at_reveal == {g["text"] for g in store.teacher_state(code, key)["guesses"]} == set(last_ok.values())
    with pytest.raises(RoundClosed):
        store.guess(code, tokens[0], 0, "too late")


def test_a_reveal_waits_for_a_guess_already_under_way(store):
    """A guess that has read 'open' holds the round (FOR SHARE / SQLite's write lock) until it commits, so the reveal
    that comes meanwhile waits and then shows it: no guess lands after the class's guesses were shown."""
    code, key = _room(store)
    me, _ = store.join(code)
    checked, release, shown = threading.Event(), threading.Event(), []
    original = store._current_round

    def slow_current_round(conn, room_id, lock=False, share=False):
        row = original(conn, room_id, lock=lock, share=share)
        if share:  # the guess has seen the round open: hold its transaction here
            checked.set()
            release.wait(30)
        return row

    store._current_round = slow_current_round
    guesser = threading.Thread(target=store.guess, args=(code, me, 0, "Paris"))
    guesser.start()
    assert checked.wait(30)

    def reveal():
        store.reveal(code, key, 0)
        shown.append([g["text"] for g in store.teacher_state(code, key)["guesses"]])

    revealer = threading.Thread(target=reveal)
    revealer.start()
    time.sleep(0.5)
    assert revealer.is_alive()  # waiting for the guess's transaction
    release.set()
    guesser.join(30)
    revealer.join(30)
    assert shown == [["Paris"]]


# --------------------------------------------------------------------------- the game's flow


def test_a_game_round_by_round(store):
    code, key = _room(store)
    ana, name = store.join(code, "Ana")
    bo, default_name = store.join(code)
    assert (name, default_name) == ("Ana", "Learner 2")
    store.guess(code, ana, 0, "Paris", 6342, "␣Paris")
    store.guess(code, bo, 0, "Lyon", 31819, "␣Lyon")
    store.guess(code, bo, 0, "Paris", 6342, "␣Paris")  # changed her mind: the latest counts
    public = store.public_state(code)
    assert public["n_guesses"] == 2 and "counts" not in public  # how many, not what
    assert public["n_learners"] == 2  # of how many who joined
    assert "guesses" not in store.teacher_state(code, key)  # not even the teacher, before the reveal
    assert store.my_guess(code, bo) == "Paris"
    store.reveal(code, key, 0)
    store.reveal(code, key, 0)  # a second click changes nothing
    public = store.public_state(code)
    assert public["counts"] == [{"token_id": 6342, "shown": "␣Paris", "n": 2}] and public["true_id"] == 262
    with pytest.raises(ValueError, match="not the passage's next token"):
        store.next_round(code, key, 0, 6342, " Paris", "true")
    assert store.next_round(code, key, 0, 262, " the", "true") == 1
    assert store.next_round(code, key, 0, 262, " the", "true") == 1  # a double click does not skip a round
    state = store.public_state(code)
    assert (state["round"], state["text"], state["ids"][-1], state["state"]) == (1, "The capital of France is the",
                                                                                 262, "open")
    assert store.count_guesses(code) == 0
    store.guess(code, ana, 1, "capital", 3139)
    with pytest.raises(RoundClosed):
        store.guess(code, ana, 0, "late", 1)  # the old round is over
    assert store.next_round(code, key, 1, 50256, "!", "teacher") == 2  # Next from an open round reveals it
    rows = store.export_rows(code, key)
    assert [(r["round"], r["name"], r["guess"], r["true_id"], r["chosen_id"]) for r in rows] == [
        (1, "Ana", "Paris", 262, 262), (1, "Learner 2", "Paris", 262, 262), (2, "Ana", "capital", 3139, 50256)]
    assert store.public_state(code)["has_passage"] and store.public_state(code)["round"] == 2


def test_set_name_and_closed_rooms(store):
    code, key = _room(store)
    me, _ = store.join(code)
    assert store.set_name(code, me, "  Zoë  ") == "Zoë"
    store.close(code, key)
    with pytest.raises(RoomClosed):
        store.join(code)
    with pytest.raises(RoomClosed):
        store.guess(code, me, 0, "Paris")
    with pytest.raises(RoomClosed):
        store.next_round(code, key, 0, 262, " the", "true")
    assert store.public_state(code)["closed"]


# --------------------------------------------------------------------------- keys


def test_only_the_teacher_key_reveals_advances_closes_reads_or_deletes(store):
    code, key = _room(store)
    other_code, other_key = _room(store)
    learner, _ = store.join(code)
    for wrong in ("", "x", learner, other_key, key + "x", None):
        for action in (lambda k: store.reveal(code, k, 0), lambda k: store.next_round(code, k, 0, 262, " the", "true"),
                       lambda k: store.close(code, k), lambda k: store.delete(code, k),
                       lambda k: store.teacher_state(code, k), lambda k: store.export_rows(code, k)):
            with pytest.raises(NotTeacher):
                action(wrong)
    assert store.public_state(code)["state"] == "open" and not store.public_state(code)["closed"]
    with pytest.raises(NotLearner):
        store.guess(other_code, learner, 0, "Paris")  # a learner of one room cannot play in another
    with pytest.raises(NotLearner):
        store.my_guess(other_code, learner)
    store.delete(code, key)
    with pytest.raises(RoomNotFound):
        store.public_state(code)
    assert store.public_state(other_code)["round"] == 0


def test_keys_are_stored_only_as_hashes_and_never_logged(engine, store, caplog):
    caplog.set_level(logging.DEBUG)
    code, key = _room(store)
    learner, _ = store.join(code)
    store.reveal(code, key, 0)
    with pytest.raises(NotTeacher):
        store.close(code, "wrong")
    with engine.connect() as conn:
        dump = " ".join(str(row) for t in schema.metadata.sorted_tables for row in conn.execute(sa.select(t)))
    assert key not in dump and learner not in dump
    assert key not in caplog.text and learner not in caplog.text
    for state in (store.public_state(code), store.teacher_state(code, key)):
        assert key not in str(state) and learner not in str(state) and "key_hash" not in str(state)


def test_room_codes_are_40_bits_of_an_unambiguous_alphabet():
    assert len(CODE_ALPHABET) == 32 and not set("0O1I") & set(CODE_ALPHABET)
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert normalise_code(" k7q2-mxp4 ") == "K7Q2MXP4"
    for bad in ("K7Q2MXP", "K7Q2MXP0", "", None, "K7Q2MXP4X"):
        with pytest.raises(RoomNotFound):
            normalise_code(bad)


# --------------------------------------------------------------------------- expiry


def test_an_expired_room_cannot_be_joined_and_is_cleaned(engine, store, clock):
    code, key = _room(store)
    learner, _ = store.join(code)
    store.guess(code, learner, 0, "Paris")
    keep, _ = _room(store)
    clock.now += 6 * 3600
    fresh, _ = _room(store)
    clock.now += 6 * 3600 + 1  # the first two rooms are 12 h old
    for action in (lambda: store.join(code), lambda: store.public_state(code), lambda: store.reveal(code, key, 0),
                   lambda: store.guess(code, learner, 0, "x")):
        with pytest.raises(RoomNotFound):
            action()
    assert store.expire() == 2
    assert store.public_state(fresh)["round"] == 0
    with engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in (schema.rooms, schema.rounds, schema.learners, schema.guesses)}
    assert counts == {"class_rooms": 1, "class_rounds": 1, "class_learners": 0, "class_guesses": 0}
    assert store.expire() == 0


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("value, message", [
    ("", "empty"), ("   ", "only spaces"), ("a\x00b", "U+0000"), ("two\nlines", "U+000A"), ("tab\there", "U+0009"),
    ("zero\u200bwidth", "U+200B"), ("bidi\u202eevil", "U+202E"), ("\x1b[31mred", "U+001B"),
    ("x" * (MAX_NAME + 1), "at most"),
    (42, "expected text"),
])
def test_clean_text_rejects_with_a_message_naming_the_field(value, message):
    with pytest.raises(ValueError, match="name") as err:
        clean_text(value, "name", MAX_NAME)
    assert message in str(err.value)


def test_the_store_cleans_names_and_guesses(store):
    code, _ = _room(store)
    me, _ = store.join(code)
    with pytest.raises(ValueError, match="name: only spaces"):
        store.join(code, "   ")
    with pytest.raises(ValueError, match="guess: control"):
        store.guess(code, me, 0, "Par\x07is")
    with pytest.raises(ValueError, match=f"at most {MAX_GUESS}"):
        store.guess(code, me, 0, "y" * (MAX_GUESS + 1))
    store.guess(code, me, 0, "  <b>Paris</b> & 'co'  ")  # stored as text, as typed: escaping is the pages' job
    assert store.my_guess(code, me) == "<b>Paris</b> & 'co'"
    assert clean_text("x" * MAX_NAME, "name", MAX_NAME) == "x" * MAX_NAME


# --------------------------------------------------------------------------- the join rate limit


def test_join_limiter_allows_ten_a_minute_per_session():
    clock = Clock(0.0)
    limiter = JoinLimiter(limit=10, window_s=60, clock=clock)
    for _ in range(10):
        limiter.check("s1")
    with pytest.raises(RateLimited, match="wait 60 s"):
        limiter.check("s1")
    limiter.check("s2")  # another session is not held back
    clock.now = 59.9
    with pytest.raises(RateLimited, match="wait 1 s"):
        limiter.check("s1")
    clock.now = 60.0  # the first ten attempts have left the window: ten more
    for _ in range(10):
        limiter.check("s1")
    with pytest.raises(RateLimited):
        limiter.check("s1")
    with pytest.raises(ValueError, match="limit"):
        JoinLimiter(limit=0)


def test_join_counts_every_attempt_against_the_session(store):
    code, _ = _room(store)
    limiter = JoinLimiter(limit=3, window_s=60, clock=Clock(0.0))
    store.join(code, limiter=limiter, session_id="s")
    for bad in ("AAAAAAAA", "BBBBBBBB"):
        with pytest.raises(RoomNotFound):
            store.join(bad, limiter=limiter, session_id="s")
    with pytest.raises(RateLimited):
        store.join(code, limiter=limiter, session_id="s")


# --------------------------------------------------------------------------- the database going away


def test_postgresql_stopped_mid_game_gives_a_clear_message_then_the_game_goes_on(pg_server, pg_url, clock):
    eng = schema.make_engine(pg_url)
    store = RoomStore(eng, clock=clock)
    store.migrate()
    code, key = _room(store)
    me, _ = store.join(code, "Ana")
    store.guess(code, me, 0, "Lyon")
    pg_server.stop()
    try:
        for action in (lambda: store.guess(code, me, 0, "Paris"), lambda: store.public_state(code),
                       lambda: store.count_guesses(code), lambda: store.reveal(code, key, 0), lambda: store.join(code)):
            with pytest.raises(RoomsUnavailable) as err:
                action()
            message = str(err.value)
            assert "cannot be reached" in message and "try again" in message
            assert pg_server.password not in message and "***" in message
            assert err.value.__cause__ is None and err.value.__suppress_context__  # no driver text with the URL
    finally:
        pg_server.start()
    store.guess(code, me, 0, "Paris")  # the same store and engine go on: what was typed is sent again
    store.reveal(code, key, 0)
    assert store.teacher_state(code, key)["counts"] == [{"token_id": None, "shown": "Paris", "n": 1}]
    eng.dispose()


def test_a_wrong_password_is_not_in_the_message(pg_server, pg_url):
    url = pg_url.replace(pg_server.password, "Wr0ngPassw0rd")
    eng = schema.make_engine(url)
    with pytest.raises(RoomsUnavailable) as err:
        RoomStore(eng).public_state("K7Q2MXP4")
    assert "Wr0ngPassw0rd" not in str(err.value) and pg_server.password not in str(err.value)
    eng.dispose()


def test_without_pre_ping_a_dropped_connection_is_retried_once(pg_server, pg_url):
    """An engine made without pool_pre_ping (st.connection's default) still goes on after a restart: the store
    retries once when SQLAlchemy says the pooled connection was invalidated."""
    eng = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    store = RoomStore(eng)
    store.migrate()
    code, _ = _room(store)
    pg_server.stop()
    pg_server.start()
    assert store.public_state(code)["round"] == 0  # the pooled connection is dead: one retry on a new one
    eng.dispose()


def test_without_postgresql_the_tests_fail_saying_how_to_install_it(monkeypatch):
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception, match="make postgres"):
        pg.require_bin_dir()


def test_me_and_rounds_detail(store):
    code, key = _room(store)
    me, name = store.join(code, "Ana")
    assert store.me(code, me) == {"name": "Ana", "guess": None, "shown": None, "token_id": None}
    store.guess(code, me, 0, "Paris", 6342, "␣Paris")
    assert store.me(code, me) == {"name": "Ana", "guess": "Paris", "shown": "␣Paris", "token_id": 6342}
    with pytest.raises(NotLearner):
        store.me(code, "someone-else")
    store.next_round(code, key, 0, 262, " the", "true")
    assert store.me(code, me)["guess"] is None  # a new round: no guess yet
    rounds = store.rounds_detail(code, key)
    assert [(r["round"], r["state"], r["true_id"], r["chosen_id"], r["chosen_by"]) for r in rounds] == [
        (0, "revealed", 262, 262, "true"), (1, "open", 3139, None, None)]
    assert rounds[1]["ids"] == [464, 3139, 286, 4881, 318, 262] and rounds[1]["text"].endswith("is the")
    with pytest.raises(NotTeacher):
        store.rounds_detail(code, "not-the-key")


def test_who_guessed_names_only_the_learners_of_the_tokens_asked_and_only_after_the_reveal(store):
    code, key = _room(store)
    ana, _ = store.join(code, "Ana")
    bo, _ = store.join(code, "Bo")
    cy, _ = store.join(code, "Cy")
    store.guess(code, ana, 0, "Paris", 6342, "␣Paris")
    store.guess(code, bo, 0, "Lyon", 30051, "␣Lyon")
    store.guess(code, cy, 0, "Paris", 6342, "␣Paris")
    with pytest.raises(RoundClosed):  # before the reveal nobody learns who guessed what
        store.who_guessed(code, 0, [6342])
    store.reveal(code, key, 0)
    assert store.who_guessed(code, 0, [6342]) == [("Ana", 6342), ("Cy", 6342)]  # in the order they joined
    assert store.who_guessed(code, 0, [30051, 6342]) == [("Ana", 6342), ("Bo", 30051), ("Cy", 6342)]
    assert store.who_guessed(code, 0, [262]) == []
    with pytest.raises(RoundClosed):
        store.who_guessed(code, 1, [6342])  # no such round
    with pytest.raises(ValueError, match="token_ids"):
        store.who_guessed(code, 0, ["x"])
    with pytest.raises(RoomNotFound):
        store.who_guessed("ZZZZZZZZ", 0, [6342])
