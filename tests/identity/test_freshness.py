"""Fresh sign-in for sensitive actions, and what counts as a second factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from burnlink.config import load_settings
from burnlink.errors import FreshLoginRequired
from burnlink.identity.freshness import is_fresh, require_fresh
from burnlink.identity.mfa import has_second_factor, missing_factor
from burnlink.identity.oidc import IdentityClaims
from burnlink.identity.principal import Principal

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SETTINGS = load_settings(store="memory://", oidc_max_age=300)


def principal(*, age: float | None, via: str = "session") -> Principal:
    return Principal(
        subject="alice",
        email="alice@example.com",
        groups=(),
        mfa=True,
        auth_time=None if age is None else NOW - timedelta(seconds=age),
        via=via,  # type: ignore[arg-type]
        scopes=None if via == "session" else frozenset({"secrets:create"}),
    )


@pytest.mark.parametrize(
    ("age", "fresh"),
    [
        pytest.param(0, True, id="now"),
        pytest.param(300, True, id="at-the-limit"),
        pytest.param(301, False, id="past-the-limit"),
        pytest.param(-30, True, id="small-skew"),
        pytest.param(-3600, False, id="from-the-future"),
    ],
)
def test_sign_in_is_fresh_for_max_age_seconds(age: float, fresh: bool) -> None:
    assert is_fresh(principal(age=age), SETTINGS, NOW) is fresh


def test_stale_sign_in_raises_fresh_login_required_with_max_age() -> None:
    with pytest.raises(FreshLoginRequired) as caught:
        require_fresh(principal(age=301), SETTINGS, NOW)

    assert caught.value.max_age == 300


def test_fresh_sign_in_passes() -> None:
    require_fresh(principal(age=10), SETTINGS, NOW)


def test_a_token_is_never_fresh() -> None:
    with pytest.raises(FreshLoginRequired):
        require_fresh(principal(age=None, via="token"), SETTINGS, NOW)


def claims(amr: tuple[str, ...], acr: str | None = None) -> IdentityClaims:
    return IdentityClaims(subject="s", email=None, groups=(), amr=amr, acr=acr, auth_time=NOW)


@pytest.mark.parametrize(
    ("amr", "acr", "mfa"),
    [
        pytest.param(("pwd",), None, False, id="password"),
        pytest.param((), None, False, id="nothing"),
        pytest.param(("pwd", "otp"), None, True, id="otp"),
        pytest.param(("hwk",), None, True, id="key"),
        pytest.param(("mfa",), None, True, id="mfa"),
        pytest.param(("pwd",), "urn:burnlink:mfa", True, id="listed-acr"),
        pytest.param(("pwd",), "urn:other", False, id="other-acr"),
    ],
)
def test_second_factor_from_amr_or_listed_acr(
    amr: tuple[str, ...], acr: str | None, mfa: bool
) -> None:
    settings = load_settings(store="memory://", oidc_mfa_acr="urn:burnlink:mfa")

    assert has_second_factor(claims(amr, acr), settings) is mfa


def test_missing_factor_says_what_was_seen_and_what_would_do() -> None:
    text = missing_factor(claims(("pwd",)), SETTINGS)

    assert "second factor" in text
    assert "pwd" in text
    assert "otp" in text
