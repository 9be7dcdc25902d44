"""Issue 20's figures: a Class room of 40 learners (websocket sessions, bench/wsclient.py: 40 browsers would starve a
2-core machine) and the teacher in Chromium, on SQLite and on PostgreSQL. All 40 guess within about a second; the
bench checks every guess is stored exactly once (read back from the database), times the teacher's count reaching
40 after the last guess was stored, and Reveal from the press to the drawn chart; then 30 rounds for the server's
memory (the room's state lives in the database, not in the sessions)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.sessions import CHROMIUM, CHROMIUM_ARGS, rss_mb, serve

TEXT = "Udacity is the best place to learn about generative"
GUESS_BOX = "What comes next? Your guess"
GUESSES = ["AI", "models", "art", "AI", "design", "text", "AI", "music"]  # a class's spread of guesses
LEARNERS = 40
ROUNDS = 30
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-stale="true"], [data-testid="stStatusWidgetRunningIcon"]');
}"""


REVEAL_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')]
  .some((svg) => svg.textContent.includes('share of the class'))"""  # the reveal chart's axis title, drawn


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


async def _join(base: str, code: str, i: int):
    from bench.wsclient import Session

    s = Session(base, f"room={code}")
    await s.open("class")
    await s.run("Join", typed={"Your name on the class's screen (optional)": f"Learner {i + 1}"})
    return s


async def _guess(s, text: str) -> float:
    """Type `text`, then send it (two runs, as a person sees the mapping first); the time the send finished."""
    await s.run(typed={GUESS_BOX: text})
    await s.run("Send my guess")
    return time.monotonic()


class Learners:
    """LEARNERS websocket sessions on their own asyncio loop (a thread: Playwright's sync API owns this one)."""

    def __init__(self, base: str, code: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sessions = self._do(lambda: asyncio.gather(*[_join(base, code, i) for i in range(LEARNERS)]))
        self.stop = asyncio.Event()
        self.polls: list[float] = []
        self.pollers = [asyncio.run_coroutine_threadsafe(self._poll(s), self.loop) for s in self.sessions]

    async def _poll(self, session) -> None:
        """A learner's browser timer: the page's run_every=1 fragment (follow) rerun every second, all game long."""
        await asyncio.sleep(random.random())  # forty browsers are not in step
        while not self.stop.is_set():
            began = time.monotonic()
            self.polls.append(await session.poll())  # None: the server skipped it
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

    def _do(self, make, timeout: float = 300):
        """Run the awaitable `make()` builds on the learners' loop (built there: gather binds to its loop)."""
        async def wrapped():
            return await make()
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def guess_all(self, r: int) -> tuple[float, float]:
        """Every learner guesses at once (round `r`'s spread of words): (seconds until all sent, when). First each
        page follows the new round, untimed (in a browser the page's follow() fragment reruns it within 1 s)."""
        if r:
            self._do(lambda: asyncio.gather(*[s.run() for s in self.sessions]))
        start = time.monotonic()
        done = self._do(lambda: asyncio.gather(*[_guess(s, GUESSES[(i + r) % len(GUESSES)])
                                                 for i, s in enumerate(self.sessions)]))
        return max(done) - start, max(done)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        for poller in self.pollers:
            poller.result(30)
        self._do(lambda: asyncio.gather(*[s.close() for s in self.sessions], return_exceptions=True))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _one(db: str, url: str) -> dict:
    """The room on one database: the figures of round 1, then memory over ROUNDS rounds."""
    from playwright.sync_api import sync_playwright

    from dashboard.rooms import RoomStore
    from dashboard.rooms_schema import make_engine

    store = RoomStore(make_engine(url))
    res: dict = {"db": db}
    with serve(env={"TOKENSCOPE_CLASS_DB": url}) as (base, server), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.goto(f"{base}/class", timeout=300_000)
        page.get_by_label("Text so far (the class guesses what comes next)").fill(TEXT)
        page.get_by_role("button", name="Start the room").click(timeout=300_000)  # a fresh server loads the model
        heading = page.get_by_text(re.compile(r"Room code: [A-Z0-9]{4}-[A-Z0-9]{4}"))
        heading.wait_for(timeout=120_000)
        code = heading.inner_text().split(":")[1].strip().replace("-", "")
        page.get_by_text("Show the teacher key").click()  # folded, off the projector, until saved
        page.get_by_role("button", name="I have saved it").click()
        page.wait_for_function(IDLE_JS, timeout=60_000)
        metric = page.get_by_test_id("stMetricValue").first
        times: dict = {"count": [], "reveal": []}

        def teacher(r: int) -> None:
            stored = time.monotonic()  # just after the last learner's send finished
            stored_rows = store.count_guesses(code)
            if stored_rows != LEARNERS:
                raise AssertionError(f"round {r + 1}: {stored_rows} guesses stored, not {LEARNERS}")
            page.wait_for_function(f"""() => {{ const m = document.querySelector('[data-testid="stMetricValue"]');
                return m && m.innerText.trim() === '{LEARNERS}'; }}""", timeout=30_000, polling=50)
            times["count"].append(time.monotonic() - stored)
            start = time.monotonic()
            page.get_by_role("button", name="Reveal").click()
            page.wait_for_function(REVEAL_JS, timeout=30_000, polling="raf")
            times["reveal"].append(time.monotonic() - start)
            page.get_by_role("button", name="Next round").click()
            page.get_by_text(f"Round {r + 2}", exact=True).wait_for(timeout=30_000)
            metric.wait_for(timeout=30_000)
            if r == 0:
                res["rss_after_1"] = rss_mb(server.pid)
            if r == 9:
                res["rss_after_10"] = rss_mb(server.pid)

        res["rss_start"] = rss_mb(server.pid)
        learners, game = Learners(base, code), {"spread": []}
        try:
            for r in range(ROUNDS):
                spread, _ = learners.guess_all(r)
                game["spread"].append(spread)
                teacher(r)
        finally:
            learners.close()
            res["polls"] = learners.polls
        res["rss_end"] = rss_mb(server.pid)
        res["stored"] = _stored(store, code)
        res.update(game, **times, load=load())
        browser.close()
    return res


def _stored(store, code: str) -> tuple[int, int]:
    """(guess rows in the room, distinct (round, learner) pairs among them), read from the database itself."""
    import sqlalchemy as sa

    from dashboard.rooms_schema import guesses, rooms, rounds

    with store.engine.connect() as conn:
        room_rounds = sa.select(rounds.c.id).join(rooms, rooms.c.id == rounds.c.room_id).where(rooms.c.code == code)
        rows = conn.execute(sa.select(guesses.c.round_id, guesses.c.learner_id)
                            .where(guesses.c.round_id.in_(room_rounds))).all()
    return len(rows), len(set(rows))


def measure() -> list[dict]:
    """The room on SQLite (a file in a temporary folder) and on a throw-away PostgreSQL server."""
    from tests.pg import PostgresServer, require_bin_dir

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        out.append(_one("SQLite", f"sqlite:///{Path(tmp) / 'rooms.sqlite3'}"))
    server = PostgresServer(require_bin_dir())
    try:
        server.start()
        server.psql("CREATE DATABASE bench")
        out.append(_one("PostgreSQL", server.url("bench")))
    finally:
        server.remove()
    return out


def med(values) -> float:
    return statistics.median(values)
