"""An OpenAI-compatible Chat Completions server on 127.0.0.1 for tests (standard library only).

It records every request body and answers according to `mode`: normal, slow, 429, 500,
malformed, invent, echo (repeats the pseudonyms it received), reject_stream_options, trickle
(streams every piece slowly, each well within the client timeout).
Streamed replies come in small SSE chunks (a pseudonym is split across chunks) ending
`data: [DONE]`; with stream false it answers one JSON completion.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

INVENTED_NUMBER = "7.35"
INVENTED_SENTENCE = f"The mean rose to {INVENTED_NUMBER} on the last visit."


def reply_for(mode: str, body: dict) -> str:
    """The reply text: pseudonyms and one date taken from the request so that it is grounded."""
    user = body["messages"][-1]["content"]
    found = set(re.findall(r"(?:Teacher T|Coach C|School S|Observer O)\d+", user))
    names = sorted(found, key=lambda n: (not n.startswith("Teacher"), n))
    day = (re.findall(r"\d{4}-\d{2}-\d{2}", user) or ["2025-09-03"])[-1]
    text = f"## Where things stand\n{' and '.join(names[:2]) or 'The teacher'} met on {day}.\n"
    if mode == "invent":
        text += INVENTED_SENTENCE + "\n"
    if mode == "echo":
        text += "Names: " + ", ".join(names) + ". Again " + "; ".join(n + "'s" for n in names) + ".\n"
    return text + "## Suggested focus\nKeep the routine."


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLM

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _json(self, status: int, payload: dict | str, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data.encode())))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data.encode())

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        self.server.requests.append(body)
        mode = self.server.mode
        if not self.path.endswith("/chat/completions"):
            return self._json(404, {"error": {"message": "not found"}})
        if mode == "slow":
            time.sleep(self.server.slow_s)
        if mode == "429":
            return self._json(
                429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"retry-after-ms": "10"}
            )
        if mode == "500":
            return self._json(
                500, {"error": {"message": "boom", "type": "server_error"}}, {"retry-after-ms": "10"}
            )
        if mode == "reject_stream_options" and "stream_options" in body:
            return self._json(400, {"error": {"message": "Unrecognized request argument: stream_options"}})
        text = reply_for(mode, body)
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": "fake-model"}
        usage = {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
        if not body.get("stream"):
            if mode == "malformed":
                return self._json(200, '{"id": "chatcmpl-fake", "choices": [')
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def send(data: str) -> None:
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        if mode == "malformed":
            send('{"id": "chatcmpl-fake", "choices": [{"delta": {"content": "Hal')
        else:
            for i in range(0, len(text), 4):  # 4 characters a chunk: pseudonyms arrive split
                if mode == "trickle":
                    time.sleep(self.server.trickle_s)
                delta = {"index": 0, "delta": {"content": text[i : i + 4]}, "finish_reason": None}
                send(json.dumps({**base, "object": "chat.completion.chunk", "choices": [delta]}))
            if (body.get("stream_options") or {}).get("include_usage"):
                send(json.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        send("[DONE]")


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "normal"
        self.slow_s = 3.0
        self.trickle_s = 0.2  # "trickle": this long between streamed pieces
        self.requests: list[dict] = []
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def bodies(self) -> str:
        """Every request body received, as one string (for leak checks)."""
        return "\n".join(json.dumps(b, ensure_ascii=False) for b in self.requests)

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def fake_llm():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm_env(fake_llm, monkeypatch):
    """OPENAI_* pointing at the fake server, a short timeout and no retries."""
    from coaching.settings import get_settings

    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("COACHLOOP_LLM_TIMEOUT", "1")
    monkeypatch.setenv("COACHLOOP_LLM_RETRIES", "0")
    monkeypatch.setenv("COACHLOOP_LLM_MODEL", "fake-model")
    get_settings.cache_clear()
    yield fake_llm
    get_settings.cache_clear()
