"""Class rooms for Shannon's guessing game: rooms, rounds, learners and guesses in a SQL database (schema:
dashboard/rooms_schema.py), every teacher action guarded by the teacher's key (codes, keys, text rules and the join
rate limit: dashboard/rooms_guard.py). Database faults surface as RoomsUnavailable, with no password in the message.
"""

from __future__ import annotations

import collections
import functools
import hmac
import json
import logging
import secrets
import time
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from dashboard.rooms_guard import (  # noqa: F401  (the store's names, re-exported for the pages)
    CHOSEN_BY, CODE_ALPHABET, CODE_LENGTH, JOIN_LIMIT, JOIN_WINDOW_S, MAX_GUESS, MAX_MODEL_KEY, MAX_NAME, MAX_TEXT,
    ROOM_TTL_S, JoinLimiter, NotLearner, NotTeacher, RateLimited, RoomClosed, RoomNotFound, RoomsError,
    RoomsUnavailable, RoundClosed, _digest, clean_text, new_code, normalise_code)
from dashboard.rooms_schema import guesses, learners, migrate, prepare, rooms, rounds, safe_url

logger = logging.getLogger(__name__)


def _guarded(method):
    """Run a store method, retrying once on a dropped connection; database faults become RoomsUnavailable."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        for attempt in (1, 2):
            try:
                return method(self, *args, **kwargs)
            except sa.exc.DBAPIError as exc:
                if not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
                    raise
                if attempt == 1 and exc.connection_invalidated:
                    logger.info("rooms database connection dropped; retrying %s once", method.__name__)
                    continue
                logger.warning("rooms database unavailable in %s: %s", method.__name__, type(exc.orig).__name__)
                raise RoomsUnavailable(
                    f"The class database ({safe_url(self.engine.url)}) cannot be reached right now; nothing was "
                    "changed. What you typed is kept: try again in a moment.") from None
            except sa.exc.TimeoutError:
                raise RoomsUnavailable("The class database is busy (no free connection); try again in a moment.") \
                    from None

    return wrapper


class RoomStore:
    """Rooms, rounds, learners and guesses over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time, ttl_s: float = ROOM_TTL_S):
        self.engine, self.clock, self.ttl_s = prepare(engine), clock, float(ttl_s)
        self._upsert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @_guarded
    def migrate(self) -> int:
        """The schema version after creating or upgrading the schema."""
        return migrate(self.engine)

    def _write(self):
        """A connection whose transaction takes the write lock at once (SQLite), in a `with ... begin()`."""
        return self.engine.connect().execution_options(write=True)

    # ----------------------------------------------------------------------- look-ups inside a transaction

    def _room(self, conn, code, lock: bool = False):
        """The live room row for `code` (FOR UPDATE when `lock`), or RoomNotFound."""
        query = sa.select(rooms).where(rooms.c.code == normalise_code(code), rooms.c.expires_at > self.clock())
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise RoomNotFound("no room with that code (it may have expired or been deleted)")
        return row

    def _teacher_room(self, conn, code, key, lock: bool = True):
        """The room for `code` when `key` is its teacher key, or NotTeacher."""
        room = self._room(conn, code, lock=lock)
        if not isinstance(key, str) or not hmac.compare_digest(_digest(key), room.key_hash):
            logger.warning("refused a teacher action on a room without its key")
            raise NotTeacher("only the room's teacher can do that (the teacher key does not match)")
        return room

    def _current_round(self, conn, room_id: int, lock: bool = False, share: bool = False):
        """The room's latest round (locked FOR UPDATE or FOR SHARE on PostgreSQL when asked)."""
        query = sa.select(rounds).where(rounds.c.room_id == room_id).order_by(rounds.c.idx.desc()).limit(1)
        if lock or share:
            query = query.with_for_update(read=share and not lock)
        return conn.execute(query).first()

    def _learner(self, conn, room_id: int, learner_token):
        """The learner row for this room and learner id, or NotLearner."""
        row = conn.execute(sa.select(learners).where(
            learners.c.room_id == room_id, learners.c.token_hash == _digest(learner_token))).first()
        if row is None:
            raise NotLearner("you have not joined this room (join again with its code)")
        return row

    @staticmethod
    def _ids(values, field: str) -> list[int]:
        """A list of token ids from `values`, or ValueError naming `field`."""
        try:
            ids = [int(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{field}: expected token ids (integers), got {values!r}"[:200]) from None
        if any(i < 0 for i in ids):
            raise ValueError(f"{field}: token ids are >= 0, got {min(ids)}")
        return ids

    # ----------------------------------------------------------------------- the teacher

    @_guarded
    def create_room(self, model_key: str, text: str, prompt_ids, passage_ids=None) -> tuple[str, str]:
        """(room code, teacher key) of a new room whose first round shows `text` (token ids `prompt_ids`);
        `passage_ids`, when a passage was pasted, are the true next tokens of the rounds in order."""
        model_key = clean_text(model_key, "model", MAX_MODEL_KEY)
        text = clean_text(text, "text", MAX_TEXT)
        prompt = self._ids(prompt_ids, "prompt_ids")
        passage = None if passage_ids is None else self._ids(passage_ids, "passage_ids")
        key, now = secrets.token_urlsafe(32), self.clock()
        for _ in range(5):  # a code already taken (1 in 2**40 per room open) is drawn again
            code = new_code()
            try:
                with self._write() as conn, conn.begin():
                    room_id = conn.execute(sa.insert(rooms).values(
                        code=code, key_hash=_digest(key), model_key=model_key, text=text,
                        prompt_ids=json.dumps(prompt), passage_ids=None if passage is None else json.dumps(passage),
                        created_at=now, expires_at=now + self.ttl_s).returning(rooms.c.id)).scalar_one()
                    conn.execute(sa.insert(rounds).values(
                        room_id=room_id, idx=0, text=text, ids=json.dumps(prompt), state="open",
                        true_id=passage[0] if passage else None, opened_at=now))
                logger.info("room made (model %s, %d passage tokens)", model_key, len(passage or []))
                return code, key
            except sa.exc.IntegrityError:
                continue
        raise RoomsError("could not draw a free room code; try again")

    @_guarded
    def reveal(self, code: str, key: str, round_index: int) -> None:
        """Close round `round_index` to guesses (a no-op when it is revealed already); teacher key needed."""
        with self._write() as conn, conn.begin():
            room = self._teacher_room(conn, code, key)
            current = self._current_round(conn, room.id, lock=True)
            if current.idx != round_index:
                raise RoundClosed(f"round {round_index + 1} is not the current round ({current.idx + 1})")
            if current.state == "open":
                conn.execute(sa.update(rounds).where(rounds.c.id == current.id).values(
                    state="revealed", revealed_at=self.clock()))

    @_guarded
    def next_round(self, code: str, key: str, round_index: int, token_id: int, token_text: str,
                   chosen_by: str) -> int:
        """The new round's index, after appending `token_id` (decoded `token_text`) to round `round_index`, which
        is revealed if it was not; teacher key needed. A second call for the same round does nothing more."""
        if chosen_by not in CHOSEN_BY:
            raise ValueError(f"chosen_by: one of {CHOSEN_BY}, got {chosen_by!r}")
        (token_id,) = self._ids([token_id], "token_id")
        if not isinstance(token_text, str) or len(token_text) > MAX_GUESS * 4:
            raise ValueError(f"token_text: a token's text, got {token_text!r}"[:200])
        with self._write() as conn, conn.begin():
            room = self._teacher_room(conn, code, key)
            if room.closed_at is not None:
                raise RoomClosed("the room is closed")
            current = self._current_round(conn, room.id, lock=True)
            if current.idx == round_index + 1:
                return current.idx  # a double click, or a retry after a lost answer
            if current.idx != round_index:
                raise RoundClosed(f"round {round_index + 1} is not the current round ({current.idx + 1})")
            if chosen_by == "true" and current.true_id != token_id:
                raise ValueError(f"token_id: {token_id} is not the passage's next token ({current.true_id})")
            now = self.clock()
            conn.execute(sa.update(rounds).where(rounds.c.id == current.id).values(
                state="revealed", revealed_at=current.revealed_at or now,
                chosen_id=token_id, chosen_text=token_text, chosen_by=chosen_by))
            passage = json.loads(room.passage_ids) if room.passage_ids else []
            nxt = current.idx + 1
            conn.execute(sa.insert(rounds).values(
                room_id=room.id, idx=nxt, text=current.text + token_text,
                ids=json.dumps(json.loads(current.ids) + [token_id]), state="open",
                true_id=passage[nxt] if nxt < len(passage) else None, opened_at=now))
            return nxt

    @_guarded
    def close(self, code: str, key: str) -> None:
        """Close the room: no more joins, guesses or rounds (its data stays until deleted); teacher key needed."""
        with self._write() as conn, conn.begin():
            room = self._teacher_room(conn, code, key)
            if room.closed_at is None:
                conn.execute(sa.update(rooms).where(rooms.c.id == room.id).values(closed_at=self.clock()))

    @_guarded
    def delete(self, code: str, key: str) -> None:
        """Delete the room and everything in it; teacher key needed."""
        with self._write() as conn, conn.begin():
            room = self._teacher_room(conn, code, key)
            self._delete_rooms(conn, [room.id])
        logger.info("room deleted by its teacher")

    @staticmethod
    def _delete_rooms(conn, ids: list[int]) -> None:
        """Delete rooms `ids` with their guesses, learners and rounds (children first: no reliance on CASCADE)."""
        if not ids:
            return
        round_ids = sa.select(rounds.c.id).where(rounds.c.room_id.in_(ids))
        conn.execute(sa.delete(guesses).where(guesses.c.round_id.in_(round_ids)))
        conn.execute(sa.delete(learners).where(learners.c.room_id.in_(ids)))
        conn.execute(sa.delete(rounds).where(rounds.c.room_id.in_(ids)))
        conn.execute(sa.delete(rooms).where(rooms.c.id.in_(ids)))

    @_guarded
    def expire(self) -> int:
        """How many expired rooms were deleted (with everything in them)."""
        with self._write() as conn, conn.begin():
            ids = list(conn.execute(sa.select(rooms.c.id).where(rooms.c.expires_at <= self.clock())).scalars())
            self._delete_rooms(conn, ids)
        if ids:
            logger.info("deleted %d expired rooms", len(ids))
        return len(ids)

    @_guarded
    def teacher_state(self, code: str, key: str) -> dict:
        """The public state plus the learners and, once revealed, each guess with its learner; teacher key needed."""
        with self.engine.connect() as conn:
            room = self._teacher_room(conn, code, key, lock=False)
            state = self._public(conn, room, revealed_detail=True)
            state["learners"] = [{"id": r.id, "name": r.name} for r in conn.execute(
                sa.select(learners).where(learners.c.room_id == room.id).order_by(learners.c.id))]
            return state

    @_guarded
    def export_rows(self, code: str, key: str) -> list[dict]:
        """One row per guess of every revealed round (round, text so far, learner, guess, its token, the true and
        the chosen token), rounds in order; teacher key needed. Raw text: dashboard/exports.py neutralises it for CSV."""
        with self.engine.connect() as conn:
            room = self._teacher_room(conn, code, key, lock=False)
            query = (sa.select(rounds.c.idx, rounds.c.text, rounds.c.true_id, rounds.c.chosen_id, rounds.c.chosen_text,
                               rounds.c.chosen_by, learners.c.id.label("learner_id"), learners.c.name,
                               guesses.c.text.label("guess"), guesses.c.token_id, guesses.c.shown,
                               guesses.c.updated_at)
                     .select_from(rounds.join(guesses, guesses.c.round_id == rounds.c.id)
                                  .join(learners, learners.c.id == guesses.c.learner_id))
                     .where(rounds.c.room_id == room.id, rounds.c.state == "revealed")
                     .order_by(rounds.c.idx, learners.c.id))
            return [{"round": r.idx + 1, **{k: v for k, v in r._asdict().items() if k != "idx"}}
                    for r in conn.execute(query)]

    @_guarded
    def rounds_detail(self, code: str, key: str) -> list[dict]:
        """Every round of the room in order (index, token ids, state, true and chosen token); teacher key needed."""
        with self.engine.connect() as conn:
            room = self._teacher_room(conn, code, key, lock=False)
            query = sa.select(rounds).where(rounds.c.room_id == room.id).order_by(rounds.c.idx)
            return [{"round": r.idx, "ids": json.loads(r.ids), "text": r.text, "state": r.state,
                     "true_id": r.true_id, "chosen_id": r.chosen_id, "chosen_text": r.chosen_text,
                     "chosen_by": r.chosen_by} for r in conn.execute(query)]

    # ----------------------------------------------------------------------- the learners

    @_guarded
    def join(self, code: str, name: str | None = None, limiter: JoinLimiter | None = None,
             session_id: str = "") -> tuple[str, str]:
        """(learner id, display name) of a new learner in room `code`; the id stays in the learner's session.
        `limiter` counts the attempt for `session_id` first (RateLimited past its limit)."""
        if limiter is not None:
            limiter.check(session_id)
        if name is not None:
            name = clean_text(name, "name", MAX_NAME)
        token = secrets.token_urlsafe(16)
        with self._write() as conn, conn.begin():
            room = self._room(conn, code)
            if room.closed_at is not None:
                raise RoomClosed("this room is closed: ask your teacher for a new code")
            if name is None:
                count = conn.execute(sa.select(sa.func.count()).where(learners.c.room_id == room.id)).scalar_one()
                name = f"Learner {count + 1}"
            conn.execute(sa.insert(learners).values(room_id=room.id, token_hash=_digest(token), name=name,
                                                    joined_at=self.clock()))
        return token, name

    @_guarded
    def set_name(self, code: str, learner: str, name: str) -> str:
        """The learner's new display name (cleaned)."""
        name = clean_text(name, "name", MAX_NAME)
        with self._write() as conn, conn.begin():
            me = self._learner(conn, self._room(conn, code).id, learner)
            conn.execute(sa.update(learners).where(learners.c.id == me.id).values(name=name))
        return name

    @_guarded
    def guess(self, code: str, learner: str, round_index: int, text: str, token_id: int | None = None,
              shown: str | None = None) -> None:
        """Store the learner's guess for open round `round_index`, replacing an earlier one (the latest counts);
        RoundClosed once the round is revealed."""
        text = clean_text(text, "guess", MAX_GUESS)
        if token_id is not None:
            (token_id,) = self._ids([token_id], "token_id")
        with self._write() as conn, conn.begin():
            room = self._room(conn, code)
            if room.closed_at is not None:
                raise RoomClosed("this room is closed")
            me = self._learner(conn, room.id, learner)
            current = self._current_round(conn, room.id, share=True)  # a reveal waits for this guess, or it waits
            if current.idx != round_index or current.state != "open":
                raise RoundClosed("this round is over: the answer is being shown; wait for the next one")
            now = self.clock()
            stmt = self._upsert(guesses).values(round_id=current.id, learner_id=me.id, text=text, token_id=token_id,
                                                shown=shown, updated_at=now)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[guesses.c.round_id, guesses.c.learner_id],
                set_={"text": stmt.excluded.text, "token_id": stmt.excluded.token_id, "shown": stmt.excluded.shown,
                      "updated_at": stmt.excluded.updated_at}))

    @_guarded
    def my_guess(self, code: str, learner: str) -> str | None:
        """The learner's own guess in the current round, or None."""
        with self.engine.connect() as conn:
            room = self._room(conn, code)
            me = self._learner(conn, room.id, learner)
            current = self._current_round(conn, room.id)
            return conn.execute(sa.select(guesses.c.text).where(
                guesses.c.round_id == current.id, guesses.c.learner_id == me.id)).scalar()

    @_guarded
    def me(self, code: str, learner: str) -> dict:
        """The learner's display name and own guess in the current round (None: not guessed yet)."""
        with self.engine.connect() as conn:
            room = self._room(conn, code)
            me = self._learner(conn, room.id, learner)
            current = self._current_round(conn, room.id)
            guess = conn.execute(sa.select(guesses.c.text, guesses.c.shown, guesses.c.token_id).where(
                guesses.c.round_id == current.id, guesses.c.learner_id == me.id)).first()
            return {"name": me.name, "guess": guess.text if guess else None, "shown": guess.shown if guess else None,
                    "token_id": guess.token_id if guess else None}

    # ----------------------------------------------------------------------- anyone with the code

    @_guarded
    def count_guesses(self, code: str) -> int:
        """How many learners have guessed in the current round (not what)."""
        with self.engine.connect() as conn:
            current = self._current_round(conn, self._room(conn, code).id)
            return conn.execute(sa.select(sa.func.count()).where(guesses.c.round_id == current.id)).scalar_one()

    @_guarded
    def who_guessed(self, code: str, round_index: int, token_ids) -> list[tuple[str, int]]:
        """(display name, token id) of the learners whose guess in revealed round `round_index` was one of
        `token_ids`, in the order they joined: the names a reveal calls closest, and no one else's guess."""
        wanted = self._ids(list(token_ids), "token_ids")
        with self.engine.connect() as conn:
            room = self._room(conn, code)
            rnd = conn.execute(sa.select(rounds.c.id, rounds.c.state).where(
                rounds.c.room_id == room.id, rounds.c.idx == int(round_index))).first()
            if rnd is None or rnd.state != "revealed":
                raise RoundClosed("that round has not been revealed")
            rows = conn.execute(sa.select(learners.c.name, guesses.c.token_id)
                                .join(learners, learners.c.id == guesses.c.learner_id)
                                .where(guesses.c.round_id == rnd.id, guesses.c.token_id.in_(wanted))
                                .order_by(learners.c.id)).all()
        return [(r.name, int(r.token_id)) for r in rows]

    @_guarded
    def public_state(self, code: str) -> dict:
        """What a learner's page shows: the current round's text, state and guess count, and after the reveal the
        class's guesses counted by token (no names, no keys)."""
        with self.engine.connect() as conn:
            return self._public(conn, self._room(conn, code), revealed_detail=False)

    def _public(self, conn, room, revealed_detail: bool) -> dict:
        """The room's state as a dict; with `revealed_detail` a revealed round's guesses with learner ids too."""
        current = self._current_round(conn, room.id)
        rows = conn.execute(sa.select(guesses.c.learner_id, guesses.c.text, guesses.c.token_id, guesses.c.shown)
                            .where(guesses.c.round_id == current.id).order_by(guesses.c.learner_id)).all()
        state = {
            "code": room.code, "model_key": room.model_key, "round": current.idx, "text": current.text,
            "ids": json.loads(current.ids), "state": current.state, "n_guesses": len(rows),
            "n_learners": conn.execute(sa.select(sa.func.count()).where(learners.c.room_id == room.id)).scalar_one(),
            "closed": room.closed_at is not None, "expires_at": room.expires_at,
            "has_passage": room.passage_ids is not None,
        }
        if current.state == "revealed":  # before it, not even the teacher sees what was guessed: only how many
            counts = collections.Counter((r.token_id, r.shown or r.text) for r in rows)
            state["counts"] = [{"token_id": t, "shown": s, "n": n} for (t, s), n in counts.most_common()]
            state["true_id"] = current.true_id
        if current.state == "revealed" and revealed_detail:
            state["guesses"] = [r._asdict() for r in rows]
        return state
