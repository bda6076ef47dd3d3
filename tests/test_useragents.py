"""User-Agent classification, one table of real-world headers."""

from __future__ import annotations

import pytest

from burnlink.useragents import AUTOMATED, AgentClass, AgentInfo, classify

B, C, P, S, R, U = (
    AgentClass.BROWSER,
    AgentClass.CLI,
    AgentClass.PREVIEW,
    AgentClass.SCANNER,
    AgentClass.BOT,
    AgentClass.UNKNOWN,
)

CASES = [
    # Browsers
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        B,
        "Chrome",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
        B,
        "Edge",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", B, "Firefox"),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        B,
        "Safari",
    ),
    # Command-line clients
    ("burnlink-cli/0.1.0", C, "burnlink-cli"),
    ("curl/8.5.0", C, "curl"),
    ("HTTPie/3.2.2", C, "HTTPie"),
    ("Wget/1.21.4", C, "Wget"),
    ("python-httpx/0.28.1", C, "python-httpx"),
    ("python-requests/2.32.3", C, "python-requests"),
    ("Go-http-client/1.1", C, "Go http client"),
    # Chat and social link previews
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", P, "Slackbot"),
    ("Slack-ImgProxy (+https://api.slack.com/robots)", P, "Slack-ImgProxy"),
    ("Twitterbot/1.0", P, "Twitterbot"),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        P,
        "facebookexternalhit",
    ),
    ("WhatsApp/2.23.20.0 A", P, "WhatsApp"),
    ("TelegramBot (like TwitterBot)", P, "TelegramBot"),
    (
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        P,
        "Discordbot",
    ),
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        P,
        "LinkedInBot",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
        P,
        "Microsoft Teams",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        P,
        "Apple Messages",
    ),
    ("Signal-Desktop/7.0.0", P, "Signal"),
    ("Mattermost-Bot/1.1", P, "Mattermost"),
    ("Rocket.Chat+https://rocket.chat", P, "Rocket.Chat"),
    # Mail and link security scanners
    ("Mozilla/5.0 (compatible; Mimecast URL Protect)", S, "Mimecast"),
    ("Proofpoint URL Defense", S, "Proofpoint"),
    ("Barracuda Sentinel (EE)", S, "Barracuda"),
    ("Microsoft SafeLinks checker", S, "Microsoft Defender SafeLinks"),
    ("Microsoft Office Existence Discovery", S, "Outlook preview"),
    (
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
        S,
        "Outlook preview",
    ),
    # Crawlers
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        R,
        "Googlebot",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        R,
        "bingbot",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        R,
        "Applebot",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.0.0 Safari/537.36",
        R,
        "HeadlessChrome",
    ),
    ("Mozilla/5.0 (compatible; SomeNewBot/3.1; +https://example.com)", R, "bot"),
    # Unknown
    ("", U, "unknown"),
    ("my-own-script", U, "unknown"),
]


@pytest.mark.parametrize(
    ("user_agent", "kind", "name"),
    [pytest.param(*c, id=f"{c[2]}-{i}") for i, c in enumerate(CASES)],
)
def test_classify_recognises_agents(user_agent: str, kind: AgentClass, name: str) -> None:
    assert classify(user_agent) == AgentInfo(kind, name)


def test_classify_of_none_is_unknown() -> None:
    assert classify(None) == AgentInfo(AgentClass.UNKNOWN, "unknown")


def test_classify_looks_only_at_the_start_of_huge_headers() -> None:
    assert classify("x" * 10_000 + " Slackbot").kind is AgentClass.UNKNOWN


def test_automated_classes_are_the_robots() -> None:
    assert {AgentClass.PREVIEW, AgentClass.SCANNER, AgentClass.BOT} == AUTOMATED
