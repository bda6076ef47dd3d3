"""Who is asking: a browser, a command-line client, or a robot that opens links on its own.

Chat apps unfurl links, mail gateways detonate them and search engines crawl them; none of
them is the recipient. ``classify`` sorts a ``User-Agent`` header into one of the
``AgentClass`` values and names the product, from one ordered table of patterns (first match
wins, so the specific robots come before the generic browser shapes they imitate).

The header is whatever the client chose to send: the answer is a hint for audit records,
alerts and metrics, never an access decision. Unknown or missing agents are ``unknown``.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Final, NamedTuple

__all__ = ["AUTOMATED", "AgentClass", "AgentInfo", "classify"]

MAX_USER_AGENT: Final = 512
"""Only this many leading characters are examined (and kept in audit events)."""


class AgentClass(StrEnum):
    """The kind of client behind a request."""

    BROWSER = "browser"
    """A person's web browser."""
    CLI = "cli"
    """A command-line or programmatic HTTP client (burnlink-cli, curl, httpx, …)."""
    PREVIEW = "preview"
    """A chat or social app fetching the link to draw a preview card."""
    SCANNER = "scanner"
    """A mail or link security gateway checking the link before the recipient clicks."""
    BOT = "bot"
    """A search engine crawler or another automated fetcher."""
    UNKNOWN = "unknown"
    """No User-Agent, or one that matches nothing in the table."""


AUTOMATED: Final = frozenset({AgentClass.PREVIEW, AgentClass.SCANNER, AgentClass.BOT})
"""Classes that open links without a person asking for it."""


class AgentInfo(NamedTuple):
    """The result of ``classify``: the class and a short product name."""

    kind: AgentClass
    name: str


_P, _S, _B, _C = AgentClass.PREVIEW, AgentClass.SCANNER, AgentClass.BOT, AgentClass.CLI

# (pattern, class, name); searched case-insensitively, first match wins.
_TABLE: Final[tuple[tuple[str, AgentClass, str], ...]] = (
    # Apple's iMessage/Messages preview pretends to be Facebook and Twitter at once.
    (r"facebookexternalhit/1\.1 facebot twitterbot/1\.0", _P, "Apple Messages"),
    (r"slack-imgproxy", _P, "Slack-ImgProxy"),
    (r"slackbot", _P, "Slackbot"),
    (r"telegrambot", _P, "TelegramBot"),  # "TelegramBot (like TwitterBot)"
    (r"twitterbot", _P, "Twitterbot"),
    (r"facebookexternalhit|facebookcatalog|\bfacebot\b", _P, "facebookexternalhit"),
    (r"whatsapp", _P, "WhatsApp"),
    (r"discordbot", _P, "Discordbot"),
    (r"linkedinbot", _P, "LinkedInBot"),
    (r"skypeuripreview", _P, "Microsoft Teams"),
    (r"\bsignal\b", _P, "Signal"),
    (r"mattermost", _P, "Mattermost"),
    (r"rocket\.chat", _P, "Rocket.Chat"),
    (r"zulip", _P, "Zulip"),
    (r"\bviber\b", _P, "Viber"),
    (r"snapchat", _P, "Snapchat"),
    (r"pinterest", _P, "Pinterest"),
    (r"redditbot", _P, "Reddit"),
    (r"embedly", _P, "Embedly"),
    (r"iframely", _P, "Iframely"),
    (r"\bw3c_validator|google-pagerenderer|google-structured-data", _P, "Google preview"),
    (r"mimecast", _S, "Mimecast"),
    (r"proofpoint", _S, "Proofpoint"),
    (r"barracuda", _S, "Barracuda"),
    (r"safelinks|safe links|microsoft defender", _S, "Microsoft Defender SafeLinks"),
    (r"microsoft office existence discovery|ms-office|microsoft outlook", _S, "Outlook preview"),
    (r"trendmicro|trend micro", _S, "Trend Micro"),
    (r"sophos", _S, "Sophos"),
    (r"fortiguard|fortinet", _S, "Fortinet"),
    (r"symantec|broadcom", _S, "Symantec"),
    (r"cisco.*(ironport|secure email)|ironport", _S, "Cisco Secure Email"),
    (r"googlebot|google-inspectiontool|storebot-google|googleother", _B, "Googlebot"),
    (r"bingbot|bingpreview|adidxbot", _B, "bingbot"),
    (r"applebot", _B, "Applebot"),
    (r"duckduckbot|duckassistbot", _B, "DuckDuckBot"),
    (r"yandex(bot|images|metrika)", _B, "YandexBot"),
    (r"baiduspider", _B, "Baiduspider"),
    (r"gptbot|chatgpt-user|oai-searchbot", _B, "OpenAI"),
    (r"claudebot|claude-user|anthropic-ai", _B, "Anthropic"),
    (r"headlesschrome", _B, "HeadlessChrome"),
    (r"burnlink-cli", _C, "burnlink-cli"),
    (r"burnlink-python", _C, "burnlink-python"),
    (r"^curl/", _C, "curl"),
    (r"^httpie/", _C, "HTTPie"),
    (r"^wget/", _C, "Wget"),
    (r"^python-httpx/", _C, "python-httpx"),
    (r"^python-requests/", _C, "python-requests"),
    (r"^python-urllib/", _C, "python-urllib"),
    (r"^aiohttp/|python/[\d.]+ aiohttp", _C, "aiohttp"),
    (r"^go-http-client/", _C, "Go http client"),
    (r"^okhttp/", _C, "okhttp"),
    (r"^powershell/|windowspowershell", _C, "PowerShell"),
    (r"^xh/", _C, "xh"),
    (r"^node-fetch|^undici|^axios/", _C, "Node.js"),
    # Generic robots: after every named one, before the browser shapes.
    (r"\b(bot|crawler|spider|crawl|preview|scanner|fetcher)\b|bot/\d", _B, "bot"),
    (r"\bedg(e|a|ios)?/", AgentClass.BROWSER, "Edge"),
    (r"\bopr/|\bopera\b", AgentClass.BROWSER, "Opera"),
    (r"\bfirefox/|\bfxios/", AgentClass.BROWSER, "Firefox"),
    (r"\bchrome/|\bcrios/|\bchromium/", AgentClass.BROWSER, "Chrome"),
    (r"\bversion/[\d.]+.*safari/", AgentClass.BROWSER, "Safari"),
    (r"^mozilla/5\.0 .*(applewebkit|gecko/)", AgentClass.BROWSER, "browser"),
)

_COMPILED: Final = tuple((re.compile(p, re.IGNORECASE), kind, name) for p, kind, name in _TABLE)

_UNKNOWN: Final = AgentInfo(AgentClass.UNKNOWN, "unknown")


# Both the audit event and the request's log line classify its agent, and clients repeat
# theirs: remember the latest few thousand.
@functools.lru_cache(maxsize=4096)
def classify(user_agent: str | None) -> AgentInfo:
    """The class and product name of ``user_agent``; ``unknown`` when missing or unrecognised."""
    if not user_agent:
        return _UNKNOWN
    text = user_agent[:MAX_USER_AGENT].strip()
    for pattern, kind, name in _COMPILED:
        if pattern.search(text):
            return AgentInfo(kind, name)
    return _UNKNOWN
