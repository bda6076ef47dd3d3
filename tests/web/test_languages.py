"""Which language a page, the sign-in refusal page and the mailed code are in
(``burnlink.web.languages``): ``?lang=``, then the picker's cookie, then ``Accept-Language``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.header import decode_header, make_header
from html.parser import HTMLParser

import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.i18n import load_catalogues
from burnlink.web.app import create_app
from burnlink.web.languages import (
    LANGUAGE_COOKIE,
    LanguageRange,
    match_language,
    negotiate,
    page_language,
    parse_accept_language,
)
from tests.mail import Outbox
from tests.web.signed_in import SIGN_IN

pytestmark = pytest.mark.anyio

AVAILABLE = dict.fromkeys(["en", "de", "fr", "pt-BR", "zh-CN", "ar", "uk"], object())
SID = "bTkYIbg5BmR79iKfBBjJnA"


# Accept-Language, as RFC 9110 writes it


def test_parse_orders_by_quality_and_keeps_ties_in_order() -> None:
    ranges = parse_accept_language("fr;q=0.5, de-CH, de;q=0.9, en;q=0.5, *;q=0.1")

    assert ranges == [
        LanguageRange("de-ch", 1.0),
        LanguageRange("de", 0.9),
        LanguageRange("fr", 0.5),
        LanguageRange("en", 0.5),
        LanguageRange("*", 0.1),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("de;q=1.0001, fr", ["fr"], id="more-than-three-decimals"),
        pytest.param("de;q=2, fr", ["fr"], id="above-one"),
        pytest.param("de;q=-1, fr", ["fr"], id="negative"),
        pytest.param("de;q=abc, fr", ["fr"], id="not-a-number"),
        pytest.param("de_DE, fr", ["fr"], id="underscore"),
        pytest.param("<script>, fr", ["fr"], id="markup"),
        pytest.param("toolonglanguage, fr", ["fr"], id="subtag-over-8"),
        pytest.param("DE ; Q=0.5 , fr", ["fr", "de"], id="spaces-and-case"),
        pytest.param("de;level=1, fr;q=0.5", ["de", "fr"], id="other-parameters"),
        pytest.param("", [], id="empty"),
        pytest.param(None, [], id="absent"),
    ],
)
def test_parse_skips_malformed_entries_only(header: str | None, expected: list[str]) -> None:
    assert [r.range for r in parse_accept_language(header)] == expected


def test_parse_reads_a_bounded_number_of_ranges() -> None:
    assert len(parse_accept_language(",".join(["de"] * 10_000))) == 32


# RFC 4647 lookup against the catalogues


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        pytest.param("de", "de", id="exact"),
        pytest.param("DE-at", "de", id="region-falls-back"),
        pytest.param("pt-br", "pt-BR", id="case-insensitive"),
        pytest.param("pt", "pt-BR", id="only-catalogue-of-its-language"),
        pytest.param("pt-PT", "pt-BR", id="other-region-same-language"),
        pytest.param("zh", "zh-CN", id="chinese"),
        pytest.param("zh-Hans-SG", "zh-CN", id="simplified-script"),
        pytest.param("zh-TW", None, id="traditional-region"),
        pytest.param("zh-Hant", None, id="traditional-script"),
        pytest.param("zh-HK", None, id="hong-kong"),
        pytest.param("ru", None, id="unavailable"),
        pytest.param("*", None, id="wildcard"),
    ],
)
def test_match_language(wanted: str, expected: str | None) -> None:
    assert match_language(wanted, AVAILABLE) == expected


def test_two_regional_catalogues_need_the_region() -> None:
    available = ["en", "pt-BR", "pt-PT"]

    assert match_language("pt-PT", available) == "pt-PT"
    assert match_language("pt", available) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, "en", id="absent"),
        pytest.param("", "en", id="empty"),
        pytest.param("de-DE,de;q=0.9,en;q=0.8", "de", id="browser-german"),
        pytest.param("ru, uk;q=0.7, en;q=0.3", "uk", id="first-available"),
        pytest.param("zh-TW, zh;q=0.8, en;q=0.6", "zh-CN", id="traditional-then-chinese"),
        pytest.param("zh-TW, en;q=0.6", "en", id="traditional-not-simplified"),
        pytest.param("fr;q=0.5, de;q=0.8", "de", id="quality-beats-order"),
        pytest.param("en;q=0, de;q=0.1", "de", id="refused-english"),
        pytest.param("de;q=0, *", "en", id="wildcard-is-english"),
        pytest.param("en;q=0, *", "ar", id="wildcard-without-english"),
        pytest.param("de;q=0, de-AT", "en", id="refused-whole-language"),
        pytest.param("xx, garbage;q=abc", "en", id="garbage"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header, AVAILABLE) == expected


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        pytest.param("fr", "de", "ar", "fr", id="query-first"),
        pytest.param(None, "de", "ar", "de", id="then-cookie"),
        pytest.param(None, None, "ar", "ar", id="then-header"),
        pytest.param("ru", "de", "ar", "de", id="unknown-query-passed-over"),
        pytest.param("../../etc", "x" * 100, "ar", "ar", id="malformed-passed-over"),
        pytest.param("pt-br", None, None, "pt-BR", id="query-any-case"),
        pytest.param("", "", "", "en", id="nothing"),
    ],
)
def test_page_language(
    query: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert page_language(query, cookie, header, AVAILABLE) == expected


# Over HTTP: the first paint, the picker, the sign-in refusal page and the mail


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.html: dict[str, str | None] = {}
        self.options: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.reason_text = ""
        self._in_reason = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.html = found
        if tag == "option" and found.get("lang") is not None:
            self.options.append(found)
        self._in_reason = found.get("id") == "signin-refused"

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_reason:
            self.reason_text += data


def _parse(text: str) -> _Html:
    parsed = _Html()
    parsed.feed(text)
    return parsed


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings(store="memory://"), clock=FrozenClock())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as http,
    ):
        yield http


@pytest.mark.parametrize("path", ["/", f"/s/{SID}", f"/m/{SID}", "/security"])
@pytest.mark.parametrize(
    ("url", "headers", "language", "direction"),
    [
        pytest.param("", {}, "en", "ltr", id="default"),
        pytest.param("", {"accept-language": "de-DE,de;q=0.9"}, "de", "ltr", id="header"),
        pytest.param("", {"accept-language": "ar-EG"}, "ar", "rtl", id="header-rtl"),
        pytest.param(
            "",
            {"cookie": f"{LANGUAGE_COOKIE}=ar", "accept-language": "de"},
            "ar",
            "rtl",
            id="cookie-over-header",
        ),
        pytest.param(
            "?lang=de", {"cookie": f"{LANGUAGE_COOKIE}=ar"}, "de", "ltr", id="query-over-cookie"
        ),
    ],
)
async def test_first_paint_is_in_the_chosen_language(
    client: httpx.AsyncClient,
    path: str,
    url: str,
    headers: dict[str, str],
    language: str,
    direction: str,
) -> None:
    response = await client.get(path + url, headers=headers)
    page = _parse(response.text)
    catalogue = load_catalogues()[language]

    assert response.status_code == 200
    assert page.html["lang"] == language
    assert page.html["dir"] == direction
    assert response.headers["content-language"] == language
    assert "Accept-Language" in response.headers["vary"]
    assert "Cookie" in response.headers["vary"]
    assert catalogue.t("nav.share") in page.text
    if path != "/security":  # a page without a script loads no catalogue
        assert f"static/i18n/{language}.json" in response.text
    selected = [o["value"] for o in page.options if "selected" in o]
    assert selected == [language]


async def test_the_picker_offers_every_catalogue_in_its_own_name(
    client: httpx.AsyncClient,
) -> None:
    page = _parse((await client.get("/?lang=ja")).text)
    catalogues = load_catalogues()

    offered = {str(o["value"]): o for o in page.options}
    assert set(offered) == set(catalogues)
    assert page.options[0]["value"] == "en"
    for tag, option in offered.items():
        assert option["lang"] == tag
        assert option["dir"] == catalogues[tag].direction
    assert catalogues["de"].name in page.text
    assert catalogues["ar"].name in page.text


async def test_the_compose_page_renders_its_limits_in_the_language(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/?lang=ar")).text

    # Arabic's plural forms: few (3-10), many (11-99), one (its own words, no digit).
    assert ">5 دقائق<" in text
    assert ">15 دقيقة<" in text
    assert ">ساعة واحدة<" in text
    assert ">30 يومًا<" in text


async def test_sign_in_refusal_page_follows_the_language() -> None:
    app = create_app(load_settings(store="memory://", **SIGN_IN), clock=FrozenClock())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http,
    ):
        german = await http.get(
            "/auth/callback?state=forged&code=x", headers={"cookie": f"{LANGUAGE_COOKIE}=de"}
        )
        english = await http.get("/auth/callback?state=forged&code=x")

    page = _parse(german.text)
    assert german.status_code == 400
    assert page.html["lang"] == "de"
    assert page.reason_text.strip() == load_catalogues()["de"].t("signin.reason.state_mismatch")
    assert "Start again" in german.text  # the server's own words, under "details", in English
    assert _parse(english.text).html["lang"] == "en"
    assert "Start again" in _parse(english.text).reason_text


async def test_verification_code_mail_follows_the_page_language(outbox: Outbox) -> None:
    settings = load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
    )
    app = create_app(settings, clock=FrozenClock())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as http,
    ):
        for language in ("de", "ar", "en"):
            created = (
                await http.post(
                    "/api/v1/secrets", json={"secret": "x", "recipient_email": "bob@example.com"}
                )
            ).json()
            key = created["url"].split("#")[1]
            refused = await http.post(
                f"/api/v1/secrets/{created['id']}/reveal",
                json={"key": key},
                headers={"accept-language": language},
            )
            assert refused.json()["error"]["code"] == "verification_required"

    catalogues = load_catalogues()
    assert [m["Content-Language"] for _, _, m in outbox.messages] == ["de", "ar", "en"]
    for (_, _, message), language in zip(outbox.messages, ("de", "ar", "en"), strict=True):
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        code = re.findall(r"\b(\d{6})\b", body.decode())[0]
        subject = str(make_header(decode_header(message["Subject"])))
        assert subject == catalogues[language].t("mail.subject")
        assert body.decode().replace("\r\n", "\n").strip() == (
            catalogues[language].t("mail.body", count=10, code=code).strip()
        )
    english = outbox.messages[2][2].get_payload(decode=True)
    assert isinstance(english, bytes)
    assert "within 10 minutes" in english.decode()
