"""The OpenID Connect client against the real provider: discovery, the code flow with PKCE,
and every way an ID token is refused (another audience, expired, forged, wrong nonce), and
key rotation."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from burnlink.errors import SignInRefused
from burnlink.identity.oidc import LEEWAY, LoginRequest, OidcClient
from tests.identity.conftest import CALLBACK
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.anyio


def client_for(provider: OidcProvider, *, other: bool = False, **options: float) -> OidcClient:
    return OidcClient(
        issuer=provider.issuer,
        client_id=provider.other_client_id if other else provider.client_id,
        client_secret=provider.other_client_secret if other else provider.client_secret,
        scopes="openid email profile groups",
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def ours(provider: OidcProvider) -> AsyncIterator[OidcClient]:
    client = client_for(provider)
    yield client
    await client.aclose()


async def id_token_of(
    provider: OidcProvider, client: OidcClient, user: str = "alice", max_age: int | None = None
) -> tuple[str, LoginRequest]:
    """Sign ``user`` in through the provider for ``client``; the ID token and its request."""
    request = LoginRequest.new()
    url = await client.authorization_url(request, redirect_uri=CALLBACK, max_age=max_age)
    with httpx.Client() as browser:
        callback = provider.sign_in(browser, url, user)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [request.state]
    token = await client.exchange_code(
        query["code"][0], redirect_uri=CALLBACK, verifier=request.verifier
    )
    return token, request


async def test_authorization_url_asks_for_the_code_flow_with_pkce(
    provider: OidcProvider, ours: OidcClient
) -> None:
    request = LoginRequest.new()

    url = await ours.authorization_url(request, redirect_uri=CALLBACK, max_age=60)

    query = parse_qs(urlsplit(url).query)
    assert url.startswith(provider.discovery()["authorization_endpoint"])
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] != request.verifier
    assert (query["state"], query["nonce"], query["max_age"]) == (
        [request.state],
        [request.nonce],
        ["60"],
    )
    assert request.verifier not in url


async def test_code_flow_gives_verified_claims(provider: OidcProvider, ours: OidcClient) -> None:
    token, request = await id_token_of(provider, ours, "alice")

    claims = await ours.verify_id_token(
        token, nonce=request.nonce, max_age=None, now=datetime.now(UTC)
    )

    assert claims.email == "alice@example.com"
    assert set(claims.groups) == {"engineering", "admins"}
    assert "otp" in claims.amr
    assert claims.acr == "urn:burnlink:mfa"


async def test_wrong_nonce_is_refused(provider: OidcProvider, ours: OidcClient) -> None:
    token, _ = await id_token_of(provider, ours, "bob")

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(token, nonce="another", max_age=None, now=datetime.now(UTC))

    assert caught.value.reason == "id_token_invalid"


async def test_replayed_code_is_refused(provider: OidcProvider, ours: OidcClient) -> None:
    request = LoginRequest.new()
    url = await ours.authorization_url(request, redirect_uri=CALLBACK)
    with httpx.Client() as browser:
        code = parse_qs(urlsplit(provider.sign_in(browser, url, "bob")).query)["code"][0]
    await ours.exchange_code(code, redirect_uri=CALLBACK, verifier=request.verifier)

    with pytest.raises(SignInRefused) as caught:
        await ours.exchange_code(code, redirect_uri=CALLBACK, verifier=request.verifier)

    assert caught.value.reason == "code_refused"
    assert code not in str(caught.value)


async def test_id_token_for_another_audience_is_refused(
    provider: OidcProvider, ours: OidcClient
) -> None:
    other = client_for(provider, other=True)
    try:
        token, request = await id_token_of(provider, other, "alice")
        # The other application's own check accepts it: it is a real token, for it.
        await other.verify_id_token(token, nonce=request.nonce, max_age=None, now=datetime.now(UTC))
    finally:
        await other.aclose()

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(token, nonce=request.nonce, max_age=None, now=datetime.now(UTC))

    assert caught.value.reason == "id_token_invalid"


async def test_expired_id_token_is_refused(provider: OidcProvider, ours: OidcClient) -> None:
    token, request = await id_token_of(provider, ours, "bob")
    later = datetime.now(UTC) + timedelta(seconds=provider.id_token_ttl + LEEWAY + 5)

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(token, nonce=request.nonce, max_age=None, now=later)

    assert caught.value.reason == "id_token_expired"


async def test_forged_id_token_is_refused(provider: OidcProvider, ours: OidcClient) -> None:
    token, request = await id_token_of(provider, ours, "bob")
    genuine = jws.extract_compact(token.encode())  # its header and claims, to copy
    kid = genuine.protected["kid"]
    forger = RSAKey.generate_key(2048, parameters={"kid": kid})
    claims = {**json.loads(genuine.payload), "sub": "alice", "email": "alice@example.com"}
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, forger)

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(forged, nonce=request.nonce, max_age=None, now=datetime.now(UTC))

    assert caught.value.reason == "id_token_invalid"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"alg": "none"}, id="alg-none"),
        pytest.param({"alg": "HS256"}, id="alg-hmac"),
    ],
)
async def test_unsigned_or_symmetric_id_tokens_are_refused(
    provider: OidcProvider, ours: OidcClient, header: dict[str, str]
) -> None:
    token, request = await id_token_of(provider, ours, "bob")
    _, payload, _ = token.split(".")
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(
            f"{head}.{payload}.", nonce=request.nonce, max_age=None, now=datetime.now(UTC)
        )

    assert caught.value.reason == "id_token_invalid"


async def test_stale_sign_in_is_refused_when_max_age_was_asked(
    provider: OidcProvider, ours: OidcClient
) -> None:
    token, request = await id_token_of(provider, ours, "bob", max_age=30)
    later = datetime.now(UTC) + timedelta(seconds=30 + LEEWAY + 5)

    with pytest.raises(SignInRefused) as caught:
        await ours.verify_id_token(token, nonce=request.nonce, max_age=30, now=later)

    assert caught.value.reason in {"not_fresh", "id_token_expired"}


async def test_key_rotation_is_followed_with_one_refetch() -> None:
    from tests.oidc_provider import require_node

    require_node()
    with OidcProvider([CALLBACK]) as provider:
        client = client_for(provider)
        try:
            token, request = await id_token_of(provider, client, "bob")
            await client.verify_id_token(
                token, nonce=request.nonce, max_age=None, now=datetime.now(UTC)
            )
            old_kids = provider.kids
            provider.restart(rotate_keys=True)
            assert set(provider.kids).isdisjoint(old_kids)

            token, request = await id_token_of(provider, client, "bob")
            claims = await client.verify_id_token(
                token, nonce=request.nonce, max_age=None, now=datetime.now(UTC)
            )
        finally:
            await client.aclose()

    assert claims.email == "bob@example.com"


async def test_unknown_keys_are_refetched_at_most_once_per_interval() -> None:
    from tests.oidc_provider import require_node

    require_node()
    with OidcProvider([CALLBACK]) as provider:
        client = client_for(provider, refetch_interval=3600.0)
        try:
            token, request = await id_token_of(provider, client, "bob")
            await client.verify_id_token(
                token, nonce=request.nonce, max_age=None, now=datetime.now(UTC)
            )
            # A forged token's unknown kid spends the one refetch of the interval...
            forger = RSAKey.generate_key(2048, parameters={"kid": "unknown"})
            forged = jwt.encode({"alg": "RS256", "kid": "unknown"}, {"sub": "x"}, forger)
            with pytest.raises(SignInRefused):
                await client.verify_id_token(forged, nonce="n", max_age=None, now=datetime.now(UTC))
            # ...so a real rotation within it is not followed: the new key stays unknown.
            provider.restart(rotate_keys=True)
            token, request = await id_token_of(provider, client, "bob")
            with pytest.raises(SignInRefused) as caught:
                await client.verify_id_token(
                    token, nonce=request.nonce, max_age=None, now=datetime.now(UTC)
                )
        finally:
            await client.aclose()

    assert caught.value.reason == "id_token_invalid"


async def test_unreachable_provider_is_refused_clearly() -> None:
    client = OidcClient(
        issuer="http://127.0.0.1:9", client_id="x", client_secret="y", scopes="openid"
    )
    try:
        with pytest.raises(SignInRefused) as caught:
            await client.authorization_url(LoginRequest.new(), redirect_uri=CALLBACK)
    finally:
        await client.aclose()

    assert caught.value.reason == "provider_unavailable"
