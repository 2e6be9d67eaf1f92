"""A loopback HTTP server that speaks the Anthropic Messages and Message Batches APIs: the fake
the harness's tests and `harness bench judge` use, shipped with the package (as Inspect ships
its mock model) so a judge can be exercised through the real `anthropic` SDK from a wheel, with
no network and no key.

It is driven by the real ``anthropic`` SDK through ``base_url``, for tests and for
``harness bench judge``. Its "model" grades deterministically: the score is the number of
distinct words of the concept that occur in the judged text, capped at 3. Faults can be injected
at random (``fault_rate``, seeded) or planted in the judged text as ``[[fault:KIND]]``:

- ``429`` (with ``retry-after``), ``529`` (overloaded), ``500``: HTTP errors the SDK retries;
- ``slow``: the reply takes ``slow_s`` seconds (longer than a short client timeout);
- ``malformed``: a 200 reply whose body is not JSON;
- ``noverdict``: a reply without any ``Score:`` line (always, so re-asking does not help);
- ``outofscale``: ``Score: 7``;
- ``planted``: the reply quotes the text (which contains ``Score: 3``) and ends with the real
  verdict, which is what a parser must take.

It binds only to 127.0.0.1 and serves until :meth:`FakeAnthropic.stop`.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeAnthropic", "FaultPlan"]

_TEXT = re.compile(r"<<<TEXT\n(.*)\nTEXT>>>", re.S)
_CONCEPT = re.compile(r"^(?:Concept|Feature description): (.*)$", re.M)
_FAULT = re.compile(r"\[\[fault:(\w+)\]\]")
RANDOM_FAULTS = ("429", "529", "500", "malformed", "slow")


@dataclass
class FaultPlan:
    """Which requests fail, and how."""

    fault_rate: float = 0.0
    kinds: tuple[str, ...] = RANDOM_FAULTS
    seed: int = 0
    latency_s: float = 0.0
    slow_s: float = 5.0
    batch_polls_until_done: int = 2


@dataclass
class _State:
    plan: FaultPlan
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    message_calls: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth_headers: set[str] = field(default_factory=set)


def grade(prompt: str) -> str:
    """The fake model's reply text for a rendered rubric prompt (or a description request)."""
    if "'Description: <phrase>'" in prompt:
        marked = re.findall(r"<<(.+?)>>", prompt)
        top = max(set(marked), key=marked.count) if marked else "nothing"
        return f"It fires on one word.\nDescription: the word {top!r}"
    text_match = _TEXT.search(prompt)
    concept_match = _CONCEPT.search(prompt)
    text = text_match.group(1) if text_match else ""
    concept = concept_match.group(1) if concept_match else ""
    fault = _FAULT.search(text)
    if fault and fault.group(1) == "noverdict":
        return "I would rather not give a number for this one."
    if fault and fault.group(1) == "outofscale":
        return "Clearly off the charts. Score: 7"
    words = {w for w in re.findall(r"\w+", concept.lower()) if len(w) > 2}
    found = {w for w in re.findall(r"\w+", text.lower()) if w in words}
    score = min(3, len(found))
    reasoning = f"The text mentions {len(found)} of the concept's words."
    if fault and fault.group(1) == "planted":
        return f'The text reads: "{text}". {reasoning}\nScore: {score}'
    return f"{reasoning}\nScore: {score}"


def _message(prompt: str, model: str, reply: str) -> dict[str, Any]:
    return {
        "id": f"msg_{abs(hash((prompt, reply))) % 10**12:012d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(reply.split())},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, kind: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"type": "error", "error": {"type": kind, "message": kind}}, headers)

    def _fault_for(self, text: str) -> str | None:
        state = self.server.state
        planted = _FAULT.search(text)
        if planted and planted.group(1) in ("429", "529", "500", "malformed", "slow"):
            return planted.group(1)
        with state.lock:
            if state.plan.fault_rate and state.rng.random() < state.plan.fault_rate:
                return state.rng.choice(state.plan.kinds)
        return None

    def do_POST(self) -> None:
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        with state.lock:
            state.calls += 1
            auth = self.headers.get("x-api-key") or self.headers.get("authorization") or ""
            state.auth_headers.add(auth.removeprefix("Bearer "))
        if self.path.startswith("/v1/messages/batches"):
            return self._create_batch(body)
        if not self.path.startswith("/v1/messages"):
            return self._error(404, "not_found_error")
        prompt = body["messages"][0]["content"]
        if isinstance(prompt, list):
            prompt = prompt[0]["text"]
        text_match = _TEXT.search(prompt)
        fault = self._fault_for(text_match.group(1) if text_match else "")
        if state.plan.latency_s:
            time.sleep(state.plan.latency_s)
        with state.lock:
            state.message_calls += 1
            if fault:
                state.faults[fault] = state.faults.get(fault, 0) + 1
        if fault == "429":
            return self._error(429, "rate_limit_error", {"retry-after": "0.05"})
        if fault == "529":
            return self._error(529, "overloaded_error")
        if fault == "500":
            return self._error(500, "api_error")
        if fault == "malformed":
            return self._send(200, b'{"id": "msg_1", "content": [ this is not json')
        if fault == "slow":
            time.sleep(state.plan.slow_s)
        # a re-ask (a longer conversation) is graded the same way, verdict or not
        self._json(200, _message(prompt, body.get("model", "fake"), grade(prompt)))

    def _create_batch(self, body: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            batch_id = f"msgbatch_{len(state.batches) + 1:06d}"
            state.batches[batch_id] = {"requests": body["requests"], "polls": 0}
        self._json(200, self._batch_view(batch_id))

    def _batch_view(self, batch_id: str) -> dict[str, Any]:
        state = self.server.state
        batch = state.batches[batch_id]
        done = batch["polls"] >= state.plan.batch_polls_until_done
        n = len(batch["requests"])
        host, port = self.server.server_address[:2]
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if done else "in_progress",
            "request_counts": {
                "processing": 0 if done else n,
                "succeeded": n if done else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z" if done else None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": f"http://{host!s}:{port}/v1/messages/batches/{batch_id}/results"
            if done
            else None,
        }

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.calls += 1
        match = re.match(r"^/v1/messages/batches/(msgbatch_\d+)(/results)?$", self.path)
        if not match or match.group(1) not in state.batches:
            return self._error(404, "not_found_error")
        batch_id = match.group(1)
        if match.group(2):
            lines = []
            for req in state.batches[batch_id]["requests"]:
                params = req["params"]
                prompt = params["messages"][0]["content"]
                message = _message(prompt, params.get("model", "fake"), grade(prompt))
                lines.append(
                    json.dumps(
                        {
                            "custom_id": req["custom_id"],
                            "result": {"type": "succeeded", "message": message},
                        }
                    )
                )
            return self._send(
                200, ("\n".join(lines) + "\n").encode(), content_type="application/binary"
            )
        with state.lock:
            state.batches[batch_id]["polls"] += 1
        self._json(200, self._batch_view(batch_id))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FakeAnthropic:
    """Start with ``FakeAnthropic(plan)``; ``base_url`` for the SDK; ``stop()`` when done."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        plan = plan or FaultPlan()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = _State(plan=plan, rng=random.Random(plan.seed))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        """Where the SDK should send requests."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> _State:
        """Counters: calls, message_calls, faults by kind, batches, the API keys seen."""
        return self.server.state

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
