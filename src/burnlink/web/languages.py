"""Which language a request is answered in (docs/web.md, "Languages").

A page's language is, in order: ``?lang=`` (for links), the ``burnlink_lang`` cookie (the
language picker's remembered choice), then the browser's ``Accept-Language``, then English.
The API (the emailed verification code) follows ``Accept-Language`` alone: the pages send
their own language in it.

``Accept-Language`` is parsed as RFC 9110 (section 12.5.4) defines it: language ranges with
optional quality values (``q=0`` to ``q=1``, at most three decimals; ``q=0`` means "not
this one"), ``*`` for any. Each range is matched against the catalogues by RFC 4647 lookup
(``de-AT`` falls back to ``de``), case-insensitively. A primary language with one catalogue
matches it in any region (``pt-PT`` reads ``pt-BR``), except Chinese in Traditional script
(``zh-TW``, ``zh-HK``, ``zh-Hant``), which is not offered the Simplified catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from fastapi import Request

from burnlink.i18n import DEFAULT_LANGUAGE
from burnlink.web.request_headers import header

__all__ = [
    "LANGUAGE_COOKIE",
    "LANGUAGE_QUERY",
    "LanguageRange",
    "api_language",
    "match_language",
    "negotiate",
    "page_language",
    "parse_accept_language",
    "request_language",
]

LANGUAGE_COOKIE: Final = "burnlink_lang"
LANGUAGE_QUERY: Final = "lang"
MAX_HEADER: Final = 1024
"""Longer ``Accept-Language`` headers are cut there (a browser's fits in a few dozen bytes)."""
MAX_RANGES: Final = 32

_RANGE_RE = re.compile(r"^(?:\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*)$", re.IGNORECASE)
_QUALITY_RE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
_TRADITIONAL_CHINESE = {"hant", "tw", "hk", "mo"}


@dataclass(frozen=True, slots=True)
class LanguageRange:
    """One entry of ``Accept-Language``: a range (``de-CH``, ``*``) and its quality."""

    range: str
    quality: float


def parse_accept_language(header: str | None) -> list[LanguageRange]:
    """The ranges of an ``Accept-Language`` header, most wanted first (ties keep their order).

    Malformed entries (a bad tag, a quality outside 0 to 1) are skipped, not fatal: one odd
    entry must not cost the reader the rest of their preferences.
    """
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, *params = (part.strip() for part in item.split(";"))
        if not _RANGE_RE.match(tag):
            continue
        quality = 1.0
        valid = True
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                valid = bool(_QUALITY_RE.match(value))
                quality = float(value) if valid else 0.0
        if valid:
            ranges.append((-quality, position, tag.lower()))
    return [LanguageRange(tag, -quality) for quality, _, tag in sorted(ranges)]


def match_language(wanted: str, available: Iterable[str]) -> str | None:
    """The catalogue (as ``available`` spells it) that serves the range ``wanted``, or None.

    RFC 4647 lookup: the whole tag, then shorter and shorter prefixes (``zh-Hans-CN``,
    ``zh-Hans``, ``zh``); a primary language alone then takes its only catalogue.
    """
    by_lower = {tag.lower(): tag for tag in available}
    subtags = wanted.lower().split("-")
    if subtags[0] == "*":
        return None
    for end in range(len(subtags), 0, -1):
        candidate = "-".join(subtags[:end])
        if candidate in by_lower:
            return by_lower[candidate]
    if subtags[0] == "zh" and _TRADITIONAL_CHINESE & set(subtags[1:]):
        return None
    same_language = [tag for lower, tag in by_lower.items() if lower.split("-")[0] == subtags[0]]
    return same_language[0] if len(same_language) == 1 else None


def negotiate(accept_language: str | None, available: Mapping[str, object]) -> str:
    """The best of ``available`` for an ``Accept-Language`` header; English otherwise.

    Ranges are tried most wanted first; a range with ``q=0`` rules its language out, so
    ``*`` (any) picks English unless English was refused, then the first other catalogue.
    """
    if not accept_language:  # most API clients send none: English, without parsing
        return DEFAULT_LANGUAGE
    ranges = parse_accept_language(accept_language)
    refused = {
        match_language(r.range, available) for r in ranges if r.quality == 0 and r.range != "*"
    }
    for wanted in ranges:
        if wanted.quality == 0:
            continue
        if wanted.range == "*":
            for tag in (DEFAULT_LANGUAGE, *sorted(available)):
                if tag not in refused:
                    return tag
            continue
        found = match_language(wanted.range, available)
        if found is not None and found not in refused:
            return found
    return DEFAULT_LANGUAGE


def page_language(
    query: str | None,
    cookie: str | None,
    accept_language: str | None,
    available: Mapping[str, object],
) -> str:
    """A page's language: ``?lang=``, then the remembered choice, then ``Accept-Language``.

    An unknown or malformed ``?lang=`` or cookie is passed over, not refused: the page is still
    shown, in the next choice.
    """
    for chosen in (query, cookie):
        if chosen and len(chosen) <= 35 and _RANGE_RE.match(chosen):
            found = match_language(chosen, available)
            if found is not None:
                return found
    return negotiate(accept_language, available)


def request_language(request: Request) -> str:
    """The language of a page request (see ``page_language``) among the site's catalogues."""
    catalogues: Mapping[str, object] = request.app.state.site.catalogues
    return page_language(
        request.query_params.get(LANGUAGE_QUERY),
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
        catalogues,
    )


def api_language(request: Request) -> str:
    """The language of an API request: ``Accept-Language`` alone (the pages send theirs)."""
    site = getattr(request.app.state, "site", None)
    catalogues: Mapping[str, object] = site.catalogues if site is not None else {}
    return negotiate(header(request.scope, b"accept-language"), catalogues)
