"""``POST /integrations/slack/command``: the ``/burnlink`` slash command (docs/integrations.md
§ Slack), routed only when ``BURNLINK_SLACK_SIGNING_SECRET`` is set.

Each request must carry Slack's signature of its exact body (checked with ``slack_sdk``'s
``SignatureVerifier``: HMAC-SHA256 with the signing secret, in constant time) and a
timestamp within five minutes of the server's clock; a signature seen before is refused as a
replay. Seen signatures are counted in the store (its fixed-window counters, keyed by a
digest of the signature, in the window of the signed timestamp), so every instance sharing
the store refuses a replay that another one answered.

The answer is ephemeral (only the user who typed the command sees it) and points to the
compose page: secrets are typed there, encrypted in the browser, never into Slack.
``/burnlink request …`` points to the request page instead (ask someone for a secret), bare:
the page takes its description from the user there, not from Slack. Text typed
after the command is neither logged nor kept nor repeated; the answer warns that it went
through Slack.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from burnlink.clock import Clock
from burnlink.errors import StorageError
from burnlink.service import SecretService
from burnlink.web.base_url import public_base

router = APIRouter(include_in_schema=False)
log = logging.getLogger("burnlink.slack")

PATH = "/integrations/slack/command"
MAX_SKEW = 300
"""Seconds a request's timestamp may be from the server's clock (slack_sdk's window)."""
REPLAY_WINDOW = 3600
"""Seconds the store counts a signature (longer than any timestamp stays acceptable)."""
MAX_BODY = 8192
"""A slash command's form is far smaller; anything larger is not Slack's."""


class _ServiceClock(SlackClock):
    """The server's clock, as slack_sdk's verifier reads it (seconds since the epoch)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


def _refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@router.post(PATH)
async def slack_command(request: Request) -> JSONResponse:
    """Answer ``/burnlink`` privately with the compose page's address."""
    service: SecretService = request.app.state.service
    settings = service.settings
    secret = settings.slack_signing_secret
    if secret is None:  # pragma: no cover - the router is not mounted without it
        return _refused(404, "not_found", "Not found.")
    body = await request.body()
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if len(body) > MAX_BODY or not timestamp.isdigit() or len(timestamp) > 12:
        return _refused(401, "invalid_signature", "The request is not signed by Slack.")
    verifier = SignatureVerifier(secret.get_secret_value(), clock=_ServiceClock(service.clock))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        log.info("slack command refused: bad signature or a timestamp outside %d s", MAX_SKEW)
        return _refused(401, "invalid_signature", "The request is not signed by Slack.")
    digest = hashlib.sha256(signature.encode("ascii", "replace")).hexdigest()[:32]
    signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    try:
        seen = await service.store.hit(
            f"slack-replay:{digest}", window=REPLAY_WINDOW, now=signed_at
        )
    except StorageError:
        return _refused(503, "store_unavailable", "The secret store is unavailable.")
    if seen > 1:
        log.info("slack command refused: a replayed signature")
        return _refused(401, "replayed_request", "This request was already answered.")
    base = public_base(request, service)
    typed = _typed(body)
    if typed == "request":
        return JSONResponse(_request_answer(base))
    return JSONResponse(_answer(base, typed == "other"))


def _typed(body: bytes) -> str:
    """What the user typed after the command: ``""`` (nothing, or ``help``), ``"request"``
    (``/burnlink request …``: ask for a secret), or ``"other"``. The text itself is never
    read out, logged or kept."""
    from urllib.parse import parse_qs

    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    text = (fields.get("text") or [""])[0].strip()
    if text.lower() in ("", "help"):
        return ""
    if text.split(maxsplit=1)[0].lower() == "request":
        return "request"
    return "other"


def _request_answer(base: str) -> dict[str, Any]:
    # The page is linked bare: what the user typed is never put in a URL or repeated.
    text = (
        f":inbox_tray: *Ask for a secret with burnlink:* open <{base}/request|the request page>,"
        " describe what you need there, and send the request link it gives you to whoever has"
        " the secret. They answer in their browser, encrypted to a key only your browser"
        " holds; keep the page's own link to read the answer.\n"
        "Nobody should type the secret into Slack: messages are kept and searchable."
    )
    return {
        "response_type": "ephemeral",
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def _answer(base: str, typed: bool) -> dict[str, Any]:
    lines = [
        f":lock: *Share a secret with burnlink:* open <{base}/|the compose page>, type or"
        " paste the secret there (it is encrypted in your browser), then send the one-time"
        " link here.",
        "Never type a secret into Slack: messages are kept and searchable.",
    ]
    if typed:
        lines.append(
            ":warning: burnlink ignored the text you typed after `/burnlink`. If it was a"
            " secret, it went through Slack: change it."
        )
    text = "\n".join(lines)
    return {
        "response_type": "ephemeral",
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
