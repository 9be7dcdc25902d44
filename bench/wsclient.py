"""A Streamlit session without a browser: Streamlit's own websocket protocol (BackMsg / ForwardMsg protobufs), enough
to open a page and press its buttons, so a bench can put a class's load on one server without a Chromium per
learner (8 browsers would starve a 2-core machine and measure themselves)."""

from __future__ import annotations

import asyncio
import time

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class Session:
    """One websocket session of a served app, driven from asyncio."""

    def __init__(self, base: str, query: str = ""):
        self.base, self.query = base, query
        self.buttons: dict[str, str] = {}  # label → widget id, from the last run's deltas
        self.inputs: dict[str, str] = {}  # a text input's label → widget id
        self.values: dict[str, str] = {}  # widget id → the text this session typed there (sent with every run)
        self.markdown: list[str] = []  # the last run's Markdown bodies, in order
        self.fragments: dict[str, str] = {}  # widget id → the fragment it is drawn in (a browser reruns only that)
        self.auto_rerun = ""  # the fragment a browser would rerun on its own timer (st.fragment(run_every=…))
        self.lock = asyncio.Lock()  # one run at a time on this socket (a timer's poll and a person's press)
        self.page_hash = ""  # the page's own script hash, from the navigation message (a browser sends it back)
        self.ws = None

    async def open(self, page: str) -> float:
        """Connect and run `page` (its url path); seconds until the run finished."""
        import websockets

        url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
        self.ws = await websockets.connect(url, origin=self.base, max_size=1 << 28,
                                           subprotocols=["streamlit"], open_timeout=60)
        self.page = page
        return await self.run()

    async def poll(self) -> float | None:
        """What a browser's timer sends for a run_every fragment: that fragment's rerun; seconds it took, or None
        when the server skipped it (Streamlit drops an auto rerun of a fragment it no longer holds, silently)."""
        if not self.auto_rerun:
            return None
        try:
            return await self.run(auto=True)
        except TimeoutError:
            return None

    async def run(self, trigger: str | None = None, typed: dict[str, str] | None = None, auto: bool = False) -> float:
        """Rerun (pressing the button labelled `trigger`, when given, with `typed` {label: text} in text inputs);
        seconds until the script finished."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_name = self.page  # by name, and by the hash st.navigation gave this page (not new_session's,
        # which is the entry script's): a fragment's st.rerun() starts its full run from the hash the fragment's
        # run came with, and without one it opened the default page (the learners' follow went Home, not to the
        # reveal, in the class40 bench until this)
        state.page_script_hash = self.page_hash
        touched = []
        for label, text in (typed or {}).items():
            self.values[self.inputs[label]] = text
            touched.append(self.inputs[label])
        if trigger is not None:
            touched.append(self.buttons[trigger])
        fragment = {self.fragments.get(w, "") for w in touched}
        if len(fragment) == 1 and "" not in fragment:  # as a browser does: a widget in a fragment reruns just it
            state.fragment_id = fragment.pop()
        if auto:
            state.fragment_id, state.is_auto_rerun = self.auto_rerun, True
        for widget_id, text in self.values.items():
            widget = state.widget_states.widgets.add()
            widget.id = widget_id
            widget.string_value = text
        if trigger is not None:
            widget = state.widget_states.widgets.add()
            widget.id = self.buttons[trigger]
            widget.trigger_value = True
        async with self.lock:
            return await self._exchange(msg, 3 if auto else 60)

    async def _exchange(self, msg: BackMsg, timeout: float = 60) -> float:
        """Send one rerun request and read the run's messages until it finished; its seconds."""
        start = time.perf_counter()
        self.markdown = []
        await self.ws.send(msg.SerializeToString())
        seen = []
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no end of the run within {timeout} s (fragment "
                                   f"{msg.rerun_script.fragment_id!r}, seen {seen[-12:]})") from None
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            seen.append(kind if kind != "script_finished" else f"finished {fwd.script_finished}")
            if kind == "navigation":
                self.page_hash = fwd.navigation.page_script_hash or self.page_hash
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                kind = element.WhichOneof("type")
                if kind == "button":
                    self.buttons[element.button.label] = element.button.id
                    self.fragments[element.button.id] = fwd.delta.fragment_id
                elif kind == "text_input":
                    self.inputs[element.text_input.label] = element.text_input.id
                    self.fragments[element.text_input.id] = fwd.delta.fragment_id
                elif kind == "markdown":
                    self.markdown.append(element.markdown.body)
            elif kind == "auto_rerun":
                self.auto_rerun = fwd.auto_rerun.fragment_id
            elif kind == "script_finished":
                if fwd.script_finished in (0, 3):  # FINISHED_SUCCESSFULLY / FINISHED_FRAGMENT_RUN_SUCCESSFULLY
                    return time.perf_counter() - start

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def busy(base: str, page: str, query: str, actions: list[str], stop: asyncio.Event, times: list[float]) -> None:
    """A learner who keeps pressing `actions` in turn on `page` until `stop` is set; each run's seconds in
    `times`."""
    session = Session(base, query)
    try:
        await session.open(page)
        n = 0
        while not stop.is_set():
            label = actions[n % len(actions)]
            if label in session.buttons:
                times.append(await session.run(label))
            else:
                times.append(await session.run())
            n += 1
    finally:
        await session.close()
