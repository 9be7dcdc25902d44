"""What guards a Class room: its code, the key and learner-id hashes, text validation, the join rate limit and
the errors a room action raises (the store itself: dashboard/rooms.py).

Room codes are 8 characters of a 32-character alphabet without 0/O/1/I: 32**8 = 2**40 codes (40 bits). With the
join limit below (JOIN_LIMIT attempts per JOIN_WINDOW_S per session: 10 a minute) one session tries at most 7,200
codes in a room's 12 hours; with 1,000 rooms open at once it finds one with probability 7,200 * 1,000 / 2**40 =
6.5e-6. The limit is per session: a script opening many sessions multiplies that, so the codes' length, not the
limit, is what protects.
The teacher key is 32 random bytes (`secrets.token_urlsafe(32)`), stored only as its SHA-256; the learner's id is
16 random bytes held in the learner's session, stored the same way.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import threading
import time
import unicodedata
from typing import Callable

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 characters: no 0/O, 1/I
CODE_LENGTH = 8
ROOM_TTL_S = 12 * 3600  # a room expires 12 h after it was made
MAX_NAME = 40  # characters in a display name
MAX_GUESS = 60  # characters in a guess
MAX_TEXT = 4000  # characters in the teacher's text (tokens.MAX_PROMPT_CHARS)
MAX_MODEL_KEY = 200
JOIN_LIMIT, JOIN_WINDOW_S = 10, 60.0
CHOSEN_BY = ("true", "teacher", "model")
BAD_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control, format (zero-width, bidi), surrogates, line breaks


class RoomsError(Exception):
    """A room action that cannot be done; the message says why, in words for the page."""


class RoomNotFound(RoomsError):
    """No room with that code (never made, expired or deleted)."""


class RoomClosed(RoomsError):
    """The room was closed by its teacher."""


class NotTeacher(RoomsError, PermissionError):
    """The key given is not this room's teacher key."""


class NotLearner(RoomsError, PermissionError):
    """The learner id given has not joined this room."""


class RoundClosed(RoomsError):
    """The round is not open for that (revealed already, or not the current one)."""


class RateLimited(RoomsError):
    """Too many join attempts from one session."""


class RoomsUnavailable(RoomsError):
    """The rooms database cannot be reached right now (nothing was changed; try again)."""


def clean_text(value, field: str, max_len: int) -> str:
    """`value` stripped of surrounding spaces, or ValueError naming `field`: empty, whitespace only, control or
    format characters (Unicode Cc/Cf/Cs/Zl/Zp: a newline, tab or zero-width space included), or longer than
    `max_len` characters."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    if value == "":
        raise ValueError(f"{field}: empty; type something")
    bad = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) in BAD_CATEGORIES})
    if bad:
        raise ValueError(f"{field}: control or invisible characters are not allowed ({', '.join(bad[:5])})")
    text = value.strip()
    if not text:
        raise ValueError(f"{field}: only spaces; type something")
    if len(text) > max_len:
        raise ValueError(f"{field}: {len(text)} characters, at most {max_len}")
    return text


def normalise_code(code) -> str:
    """A typed room code in its stored form (upper case, spaces and dashes dropped), or RoomNotFound."""
    text = "".join(str(code or "").split()).replace("-", "").upper()
    if len(text) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in text):
        raise RoomNotFound("no room with that code: a code is 8 letters and digits, like K7Q2-MXP4")
    return text


def new_code() -> str:
    """A random room code (40 bits from `secrets`)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _digest(token: str) -> str:
    """The SHA-256 hex of a key or learner id (what the database keeps)."""
    return hashlib.sha256(str(token).encode("utf-8")).hexdigest()


class JoinLimiter:
    """At most `limit` join attempts per `window_s` seconds for each session id (a sliding window, in memory)."""

    def __init__(self, limit: int = JOIN_LIMIT, window_s: float = JOIN_WINDOW_S, clock: Callable = time.monotonic):
        if limit < 1 or window_s <= 0:
            raise ValueError(f"limit/window_s: need limit >= 1 and window_s > 0, got {limit!r}, {window_s!r}")
        self.limit, self.window_s, self.clock = int(limit), float(window_s), clock
        self._seen: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def check(self, session_id: str) -> None:
        """Count one attempt for `session_id`; RateLimited (saying how long to wait) past the limit."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 10_000:  # forget idle sessions
                self._seen = {k: q for k, q in self._seen.items() if q and now - q[-1] < self.window_s}
            times = self._seen.setdefault(str(session_id), collections.deque())
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                wait = self.window_s - (now - times[0])
                raise RateLimited(f"too many tries to join: wait {max(1, round(wait))} s and try again")
            times.append(now)


class SharedReads:
    """One read shared by every session of this process for `ttl_s` seconds, by key: forty learners' pages that
    follow their room every second cost the database about one read per room per `ttl_s`, not forty (measured:
    forty pages polling read-through left the server ~0.8 s behind; bench class40). Single-flight: while one
    session reads a key, the others asking for it wait for that answer instead of reading too. A failed read is
    not kept (a waiter then reads itself). `copy` makes each caller's copy (None: the kept object itself, which
    callers must not change); `ttl_s=math.inf` keeps answers until `size` newer keys push them out."""

    def __init__(self, ttl_s: float = 0.5, clock: Callable = time.monotonic, size: int = 1024,
                 copy: Callable | None = dict):
        if not ttl_s >= 0 or size < 1:
            raise ValueError(f"ttl_s/size: need ttl_s >= 0 and size >= 1, got {ttl_s!r}, {size!r}")
        self.ttl_s, self.clock, self.size, self.copy = float(ttl_s), clock, int(size), copy or (lambda v: v)
        self._items: collections.OrderedDict = collections.OrderedDict()  # key -> (read at, value)
        self._flights: dict = {}  # key -> _Flight of the read under way
        self._lock = threading.Lock()

    def get(self, key, read: Callable[[], object]):
        """A copy of `read()`'s answer for `key`, read again only when the kept one is `ttl_s` old."""
        while True:
            now = self.clock()
            with self._lock:
                kept = self._items.get(key)
                if kept is not None and now - kept[0] < self.ttl_s:
                    self._items.move_to_end(key)
                    return self.copy(kept[1])
                flight = self._flights.get(key)
                leading = flight is None
                if leading:
                    flight = self._flights[key] = _Flight()
            if leading:
                break
            flight.done.wait()
            if flight.ok:
                return self.copy(flight.value)
            # the leader's read failed: try again (this session may lead the next read)
        try:
            flight.value, flight.ok = read(), True  # an exception leaves nothing behind
            with self._lock:
                self._items[key] = (now, flight.value)
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return self.copy(flight.value)
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()


class _Flight:
    """A read under way in SharedReads: its answer once `done` is set (`ok` False: it failed)."""

    __slots__ = ("done", "ok", "value")

    def __init__(self):
        self.done, self.ok, self.value = threading.Event(), False, None


class TeacherFirst:
    """Rooms whose teacher just pressed Reveal or Next in this process, until `after_s` after the teacher's page is
    drawn again (or `max_s` passed: a page that never finished): their learners' pages on this server wait to follow
    until then.

    Why: a press changes the room's state, and every learner's once-a-second poll that sees it reruns that learner's
    whole page; forty of them at once share the GIL with the teacher's own run, which then took 2–6 s to draw the
    reveal (bench class40). And when the teacher's run ends its messages are still on their way to the browser, which
    then draws the chart: forty learners' reruns starting at that moment held the drawing back by 0.3–0.8 s (a trace
    of every script run, bench class40), hence `after_s`. Learners follow a second later instead; the projector, which
    the class watches, first."""

    def __init__(self, max_s: float = 3.0, after_s: float = 0.5, clock: Callable = time.monotonic):
        if not max_s > 0:
            raise ValueError(f"max_s: need a positive number of seconds, got {max_s!r}")
        if not 0 <= after_s <= max_s:
            raise ValueError(f"after_s: need seconds from 0 to max_s ({max_s!r}), got {after_s!r}")
        self.max_s, self.after_s, self.clock = float(max_s), float(after_s), clock
        self._until: dict[str, float] = {}  # room code -> when its priority lapses
        self._lock = threading.Lock()

    def press(self, code: str) -> None:
        """The teacher of room `code` pressed a button that changes the room: their next page run goes first."""
        with self._lock:
            self._until[code] = self.clock() + self.max_s

    def drawn(self, code: str) -> None:
        """The teacher's page of room `code` finished a run: the learners may follow `after_s` from now."""
        with self._lock:
            if code in self._until:
                self._until[code] = min(self._until[code], self.clock() + self.after_s)

    def busy(self, code: str) -> bool:
        """True while room `code`'s teacher goes first (a learner's poll then waits for the next second)."""
        with self._lock:
            until = self._until.get(code)
            if until is not None and self.clock() >= until:
                del self._until[code]
                until = None
            return until is not None
