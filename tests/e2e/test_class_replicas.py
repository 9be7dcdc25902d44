"""Two replicas of the app on one PostgreSQL, as a load balancer runs them, the teacher's reached through a proxy
on another host name and port: the join link and the QR code name the address the teacher's browser used (not the
replica's own), and learners on either replica play the same room live."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pg import pg_server, pg_url  # noqa: F401  (fixtures)

from .conftest import AppServer, expect
from .test_class import LIVE_MS, MODEL_LOAD_MS, metric, shot, start_room

pytestmark = pytest.mark.e2e


class TcpProxy:
    """A TCP proxy on a free local port that forwards every connection (HTTP and the websocket) to `port`."""

    def __init__(self, port: int):
        self.target, self.port, self.connections = port, None, 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "TcpProxy":
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._forward, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _forward(self, reader, writer) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def replicas(pg_url):
    """Two served apps whose rooms are in one PostgreSQL database."""
    servers = [AppServer(f"replica-{n}", env={"TOKENSCOPE_CLASS_DB": pg_url}) for n in "ab"]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.stop()


def join_and_guess(learner, link: str, name: str, guess: str) -> None:
    learner.goto(link, wait_until="domcontentloaded")
    learner.get_by_label("Your name on the class's screen (optional)").fill(name)
    learner.get_by_role("button", name="Join").click()
    expect(learner.get_by_text(f"You are {name}")).to_be_visible(timeout=MODEL_LOAD_MS)
    box = learner.get_by_label("What comes next? Your guess")
    box.fill(guess)
    box.press("Enter")
    expect(learner.get_by_text("The model would write it as")).to_be_visible(timeout=60_000)
    learner.get_by_role("button", name="Send my guess").click()
    expect(learner.get_by_text("You can change it until the teacher reveals")).to_be_visible(timeout=60_000)


def test_two_replicas_on_one_postgresql_play_one_room_and_the_join_link_names_the_proxy(replicas, browser):
    a, b = replicas
    proxy = TcpProxy(a.port).start()
    contexts = [browser.new_context(viewport={"width": 1440, "height": 900}) for _ in range(3)]
    try:
        teacher, ada, bo = (context.new_page() for context in contexts)
        front = f"http://localhost:{proxy.port}"  # another host name and port than the replica's 127.0.0.1:PORT
        code, _ = start_room(teacher, front)
        link = f"{front}/class?room={code}"
        expect(teacher.get_by_test_id("stCode").filter(has_text=link)).to_be_visible()  # what the teacher projects
        assert str(a.port) not in teacher.get_by_test_id("stMain").inner_text()
        join_and_guess(ada, link, "Ada", "Paris")  # through the proxy: replica a
        join_and_guess(bo, f"{b.base_url}/class?room={code}", "Bo", "Lyon")  # replica b, the same room
        expect(metric(teacher, "Guesses so far")).to_have_text("2", timeout=LIVE_MS)  # b's guess, read by a
        teacher.get_by_role("button", name="Reveal").click()
        table = teacher.get_by_test_id("stTable").filter(has_text="class share")
        expect(table.locator("tbody tr")).to_have_count(2, timeout=60_000)  # both replicas' guesses
        for learner in (ada, bo):  # each page follows the teacher's reveal, made on the other replica for bo
            expect(learner.get_by_text("Wait for the teacher's next round")).to_be_visible(timeout=LIVE_MS + 2_000)
            expect(learner.get_by_test_id("stVegaLiteChart").first).to_be_visible()
        shot(bo, "replica-b-reveal", bo.get_by_test_id("stVegaLiteChart").first)
        teacher.get_by_role("button", name="Next round").click()
        expect(teacher.get_by_role("heading", name="Round 2")).to_be_visible(timeout=60_000)
        for learner in (ada, bo):
            expect(learner.get_by_label("What comes next? Your guess")).to_have_value("", timeout=LIVE_MS + 2_000)
            expect(learner.get_by_text("Round 2 ·")).to_be_visible(timeout=LIVE_MS + 2_000)
        assert proxy.connections > 0
    finally:
        for context in contexts:
            context.close()
        proxy.stop()
