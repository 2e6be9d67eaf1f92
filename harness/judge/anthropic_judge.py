"""The Anthropic judge: the official SDK, async with bounded concurrency, cached, auditable.

- a pinned, dated model id (anthropic 2.12's ``messages.create`` has no temperature parameter, so
  the cache key records temperature as None);
- the SDK retries 429 (honouring ``retry-after``), 529, 5xx and timeouts with exponential backoff
  (``max_retries``);
- the last ``Score: N`` in the reply is the verdict, checked against the rubric's scale; an
  unparseable or out-of-scale reply gets one re-ask, then the item is unscored with the reason;
- an API failure, a refusal or a malformed reply is unscored with its reason, never a 0 (Rule 3);
- every scored verdict goes into the :class:`JudgeCache`, so no item is paid for twice (Rule 4);
- token usage and cost are recorded per judgement; the API key is only ever handed to the SDK.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import anthropic

from harness.errors import JudgeError
from harness.judge.base import Judgement, JudgeRequest
from harness.judge.budget import Budget
from harness.judge.cache import JudgeCache
from harness.judge.parse import parse_verdict
from harness.judge.rubric import Rubric

__all__ = ["DEFAULT_MODEL", "PRICES_PER_MTOK", "AnthropicJudge", "estimate_cost"]

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
# USD per million (input, output) tokens, by model-id prefix; unknown models cost 0 and say so.
PRICES_PER_MTOK = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4": (1.0, 5.0),
}
DESCRIBE = (
    "Below are text excerpts where one feature of a language model's internal activations fires "
    "strongly; the token where it fires is marked <<like this>>.\n\n{examples}\n\n"
    "In a short phrase, what does the feature detect? End with one line of the form "
    "'Description: <phrase>'."
)
REASK = (
    "Your reply did not end with a valid verdict. Reply with one line only: "
    "'Score: N', where N is a whole number from {low} to {high}."
)


def estimate_cost(model: str, n_calls: int, tokens_in: int = 300, tokens_out: int = 80) -> float:
    """Rough USD cost of ``n_calls`` judgements before running them (``harness plan``)."""
    return n_calls * _cost(model, tokens_in, tokens_out)


def _cost(model: str, input_tokens: int, output_tokens: int) -> float:
    for prefix, (p_in, p_out) in PRICES_PER_MTOK.items():
        if model.startswith(prefix):
            return (input_tokens * p_in + output_tokens * p_out) / 1e6
    return 0.0


class AnthropicJudge:
    """Scores texts with a Claude model on a rubric."""

    def __init__(
        self,
        rubric: Rubric,
        model: str = DEFAULT_MODEL,
        *,
        cache: JudgeCache | None = None,
        max_concurrency: int = 32,
        max_retries: int = 6,
        timeout_s: float = 60.0,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 400,
        budget: Budget | None = None,
    ) -> None:
        self.rubric = rubric
        self.model = model
        self.name = f"anthropic:{model}"
        self.temperature: float | None = None  # not settable through this SDK
        self.cache = cache
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL")
        self._api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not self._api_key:
            raise JudgeError("the Anthropic judge needs ANTHROPIC_API_KEY")
        self.max_tokens = max_tokens
        self.budget = budget  # the run's ledger of paid calls (judge/service.py checks it)

    def _client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout_s,
        )

    def render(self, request: JudgeRequest) -> str:
        """The prompt sent for one request."""
        return self.rubric.render(concept=request.concept, text=request.text, prompt=request.prompt)

    def cache_key(self, prompt: str) -> str:
        """The judgement cache key of one prompt."""
        return JudgeCache.key(self.model, self.rubric.content_hash, self.temperature, prompt)

    def cached(self, request: JudgeRequest) -> Judgement | None:
        """The cached judgement of a request, without any API call; None if not cached."""
        if self.cache is None:
            return None
        hit = self.cache.get(self.cache_key(self.render(request)))
        if hit is None:
            return None
        return Judgement(
            **{
                **hit,
                "cached": True,
                "api_calls": 0,
                "cost_usd": 0.0,
                "input_tokens": 0,
                "output_tokens": 0,
            }
        )

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Judge every request (concurrently, at most ``max_concurrency`` in flight)."""
        return asyncio.run(self._judge_all(requests))

    async def _judge_all(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        client = self._client()
        gate = asyncio.Semaphore(self.max_concurrency)
        try:
            return list(await asyncio.gather(*(self._judge_one(client, gate, r) for r in requests)))
        finally:
            await client.close()

    def _unscored(self, prompt: str, reason: str, raw: str = "", **usage: Any) -> Judgement:
        return Judgement(
            score=None,
            unscored_reason=reason,
            judge=self.name,
            rubric=self.rubric.ident,
            prompt=prompt,
            raw_reply=raw,
            **usage,
        )

    async def _judge_one(
        self, client: anthropic.AsyncAnthropic, gate: asyncio.Semaphore, request: JudgeRequest
    ) -> Judgement:
        prompt = self.render(request)
        key = self.cache_key(prompt)
        if (hit := self.cached(request)) is not None:
            return hit
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
        usage = {"input_tokens": 0, "output_tokens": 0, "api_calls": 0}
        replies: list[str] = []
        problem = "no reply"
        for attempt in range(2):  # the first ask, and one re-ask on an unreadable verdict
            async with gate:
                try:
                    usage["api_calls"] += 1
                    response = await client.messages.create(
                        model=self.model,
                        max_tokens=self.max_tokens,
                        messages=messages,  # type: ignore[arg-type]
                    )
                except anthropic.APIStatusError as exc:
                    reason = f"API error {exc.status_code} after {self.max_retries} retries"
                    return self._unscored(
                        prompt, reason, "\n---\n".join(replies), **self._usage(usage)
                    )
                except anthropic.APITimeoutError:
                    return self._unscored(
                        prompt,
                        f"timed out after {self.max_retries} retries",
                        "\n---\n".join(replies),
                        **self._usage(usage),
                    )
                except anthropic.APIConnectionError as exc:
                    return self._unscored(
                        prompt,
                        f"connection failed: {type(exc).__name__}",
                        "\n---\n".join(replies),
                        **self._usage(usage),
                    )
                except Exception as exc:  # a 200 whose body is not a valid message
                    return self._unscored(
                        prompt,
                        f"malformed reply: {type(exc).__name__}",
                        "\n---\n".join(replies),
                        **self._usage(usage),
                    )
            usage["input_tokens"] += response.usage.input_tokens
            usage["output_tokens"] += response.usage.output_tokens
            text = "".join(b.text for b in response.content if b.type == "text")
            replies.append(text)
            if response.stop_reason == "refusal":
                return self._unscored(
                    prompt, "the model refused", "\n---\n".join(replies), **self._usage(usage)
                )
            verdict = parse_verdict(text, self.rubric)
            if verdict.score is not None:
                judgement = Judgement(
                    score=verdict.score,
                    judge=self.name,
                    rubric=self.rubric.ident,
                    prompt=prompt,
                    raw_reply="\n---\n".join(replies),
                    **self._usage(usage),
                )
                if self.cache is not None:
                    self.cache.put(key, judgement.model_dump())
                return judgement
            problem = verdict.problem or "unreadable verdict"
            if attempt == 0:
                messages += [
                    {"role": "assistant", "content": text or "(empty)"},
                    {
                        "role": "user",
                        "content": REASK.format(low=self.rubric.low, high=self.rubric.high),
                    },
                ]
        return self._unscored(
            prompt, f"{problem} (after one re-ask)", "\n---\n".join(replies), **self._usage(usage)
        )

    def _usage(self, usage: dict[str, int]) -> dict[str, Any]:
        cost = _cost(self.model, usage["input_tokens"], usage["output_tokens"])
        return {**usage, "cost_usd": cost}

    def describe(self, examples: Sequence[str]) -> str | None:
        """Auto-interpretation: a short description of a feature from contexts where it fires
        (the token marked ``<<token>>``); None if the reply holds no description."""
        listing = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(examples))
        prompt = DESCRIBE.format(examples=listing)

        async def go() -> str:
            client = self._client()
            try:
                response = await client.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    messages=[{"role": "user", "content": prompt}],
                )
                return "".join(b.text for b in response.content if b.type == "text")
            finally:
                await client.close()

        try:
            reply = asyncio.run(go())
        except anthropic.APIError:
            return None
        lines = [ln for ln in reply.splitlines() if ln.lower().startswith("description:")]
        return lines[-1].split(":", 1)[1].strip() or None if lines else None

    # ------------------------------------------------------------ Message Batches

    def submit_batch(self, items: dict[str, JudgeRequest]) -> str:
        """Submit ``custom_id → request`` as one Message Batch; returns the batch id."""

        async def go() -> str:
            client = self._client()
            try:
                batch = await client.messages.batches.create(
                    requests=[
                        {
                            "custom_id": cid,
                            "params": {
                                "model": self.model,
                                "max_tokens": self.max_tokens,
                                "messages": [{"role": "user", "content": self.render(req)}],
                            },
                        }
                        for cid, req in items.items()
                    ]
                )
                return str(batch.id)
            finally:
                await client.close()

        return asyncio.run(go())

    def collect_batch(
        self,
        batch_id: str,
        items: dict[str, JudgeRequest],
        poll_s: float = 10.0,
        timeout_s: float = 24 * 3600.0,
    ) -> dict[str, Judgement]:
        """Wait for a batch to end, then return ``custom_id → judgement`` (scored ones cached)."""

        async def go() -> dict[str, Judgement]:
            client = self._client()
            deadline = time.monotonic() + timeout_s
            try:
                while (
                    await client.messages.batches.retrieve(batch_id)
                ).processing_status != "ended":
                    if time.monotonic() > deadline:
                        raise JudgeError(f"batch {batch_id} did not end within {timeout_s:.0f} s")
                    await asyncio.sleep(poll_s)
                out: dict[str, Judgement] = {}
                async for entry in await client.messages.batches.results(batch_id):
                    if entry.custom_id in items:
                        out[entry.custom_id] = self._from_batch_entry(entry, items[entry.custom_id])
                for cid, req in items.items():
                    out.setdefault(
                        cid, self._unscored(self.render(req), "missing from batch results")
                    )
                return out
            finally:
                await client.close()

        return asyncio.run(go())

    def _from_batch_entry(self, entry: Any, request: JudgeRequest) -> Judgement:
        prompt = self.render(request)
        if entry.result.type != "succeeded":
            return self._unscored(prompt, f"batch request {entry.result.type}")
        message = entry.result.message
        text = "".join(b.text for b in message.content if b.type == "text")
        usage = self._usage(
            {
                "input_tokens": message.usage.input_tokens,
                "output_tokens": message.usage.output_tokens,
                "api_calls": 1,
            }
        )
        usage["cost_usd"] /= 2  # batches are billed at half price
        verdict = parse_verdict(text, self.rubric)
        if verdict.score is None:
            return self._unscored(prompt, verdict.problem or "unreadable verdict", text, **usage)
        judgement = Judgement(
            score=verdict.score,
            judge=self.name,
            rubric=self.rubric.ident,
            prompt=prompt,
            raw_reply=text,
            **usage,
        )
        if self.cache is not None:
            self.cache.put(self.cache_key(prompt), judgement.model_dump())
        return judgement
