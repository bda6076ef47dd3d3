"""The real OpenID provider of the sign-in tests (tests/oidc_provider.py) does what they need.

Each flow is done by hand here, with httpx and joserfc, so that a failure in burnlink's own
sign-in tests is burnlink's and not the fixture's.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import KeySet

from tests.oidc_provider import (
    HTTP_TIMEOUT,
    MFA_ACR,
    PASSWORD_ACR,
    OidcProvider,
    ProviderError,
    require_node,
)

CALLBACK = "http://127.0.0.1:9/auth/callback"
SIGNED_OUT = "http://127.0.0.1:9/signed-out"
ID_TOKEN_TTL = 120


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    require_node()
    with OidcProvider([CALLBACK], [SIGNED_OUT], id_token_ttl=ID_TOKEN_TTL) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        yield client


class Flow:
    """One authorization request of a relying party: its PKCE verifier, state and nonce."""

    def __init__(self, provider: OidcProvider, client_id: str, **extra: str) -> None:
        self.provider = provider
        self.client_id = client_id
        self.verifier = secrets.token_urlsafe(48)
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid email groups",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            **extra,
        }
        self.url = f"{provider.discovery()['authorization_endpoint']}?{urlencode(params)}"

    def code_of(self, callback: str) -> str:
        assert callback.startswith(CALLBACK + "?"), callback
        query = parse_qs(urlsplit(callback).query)
        assert query["state"] == [self.state]
        assert query["iss"] == [self.provider.issuer]
        return query["code"][0]


def _secret_of(provider: OidcProvider, client_id: str) -> str:
    if client_id == provider.client_id:
        return provider.client_secret
    return provider.other_client_secret


def _token(provider: OidcProvider, client_id: str, data: dict[str, str]) -> httpx.Response:
    return provider.backchannel.post(
        provider.discovery()["token_endpoint"],
        data=data,
        auth=(client_id, _secret_of(provider, client_id)),
    )


def _exchange(flow: Flow, code: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": flow.verifier,
    }
    return _token(flow.provider, flow.client_id, data)


def _verify(provider: OidcProvider, id_token: str, audience: str, nonce: str | None) -> jwt.Token:
    jwks = provider.backchannel.get(provider.discovery()["jwks_uri"]).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": provider.issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**expected).validate(token.claims)
    return token


def _sign_in(provider: OidcProvider, http: httpx.Client, user: str, **extra: str) -> jwt.Token:
    flow = Flow(provider, provider.client_id, **extra)
    response = _exchange(flow, flow.code_of(provider.sign_in(http, flow.url, user)))
    assert response.status_code == 200, response.text
    return _verify(provider, response.json()["id_token"], provider.client_id, flow.nonce)


def test_provider_discovery_names_what_the_sign_in_needs(provider: OidcProvider) -> None:
    document = provider.discovery()

    assert document["issuer"] == provider.issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["end_session_endpoint"] == f"{provider.issuer}/session/end"
    assert document["device_authorization_endpoint"] == f"{provider.issuer}/device/auth"
    assert "client_secret_basic" in document["token_endpoint_auth_methods_supported"]
    assert {"groups", "email", "email_verified", "amr", "acr"} <= set(document["claims_supported"])
    assert {MFA_ACR, PASSWORD_ACR} <= set(document["acr_values_supported"])
    assert "urn:ietf:params:oauth:grant-type:device_code" in document["grant_types_supported"]


@pytest.mark.parametrize(
    ("user", "email", "groups", "amr", "acr"),
    [
        pytest.param(
            "alice",
            "alice@example.com",
            ["engineering", "admins"],
            ["pwd", "otp"],
            MFA_ACR,
            id="alice-mfa",
        ),
        pytest.param("bob", "bob@example.com", ["sales"], ["pwd"], PASSWORD_ACR, id="bob"),
        pytest.param("carol", "carol@partner.test", [], ["pwd"], PASSWORD_ACR, id="carol"),
    ],
)
def test_provider_code_flow_with_pkce_gives_each_user_their_claims(
    provider: OidcProvider,
    http: httpx.Client,
    user: str,
    email: str,
    groups: list[str],
    amr: list[str],
    acr: str,
) -> None:
    token = _sign_in(provider, http, user)

    assert token.header["kid"] == provider.kids[0]
    assert token.claims["sub"] == user
    assert token.claims["email"] == email
    assert token.claims["email_verified"] is True
    assert token.claims["groups"] == groups
    assert token.claims["amr"] == amr
    assert token.claims["acr"] == acr
    assert token.claims["exp"] - token.claims["iat"] == ID_TOKEN_TTL


def test_provider_serves_authlibs_client(provider: OidcProvider, http: httpx.Client) -> None:
    """The library burnlink's sign-in is built on completes the flow against it."""
    document = provider.discovery()
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    with OAuth2Client(
        provider.client_id,
        provider.client_secret,
        scope="openid email groups",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        url, state = client.create_authorization_url(
            document["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = provider.sign_in(http, url, "alice")
        tokens = client.fetch_token(
            document["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )

    token = _verify(provider, tokens["id_token"], provider.client_id, nonce)
    assert token.claims["amr"] == ["pwd", "otp"]


def test_provider_refuses_an_authorization_request_without_pkce(
    provider: OidcProvider, http: httpx.Client
) -> None:
    flow = Flow(provider, provider.client_id)
    without_pkce = flow.url.replace("code_challenge", "ignored_challenge")

    callback = provider.sign_in(http, without_pkce, "bob")

    query = parse_qs(urlsplit(callback).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query


def test_provider_code_is_bound_to_its_verifier(provider: OidcProvider, http: httpx.Client) -> None:
    flow = Flow(provider, provider.client_id)
    code = flow.code_of(provider.sign_in(http, flow.url, "bob"))
    right_verifier = flow.verifier
    flow.verifier = secrets.token_urlsafe(48)

    assert _exchange(flow, code).json()["error"] == "invalid_grant"
    flow.verifier = right_verifier
    assert _exchange(flow, code).status_code == 200


def test_provider_code_cannot_be_replayed(provider: OidcProvider, http: httpx.Client) -> None:
    flow = Flow(provider, provider.client_id)
    code = flow.code_of(provider.sign_in(http, flow.url, "carol"))

    assert _exchange(flow, code).status_code == 200
    assert _exchange(flow, code).json()["error"] == "invalid_grant"


def test_provider_other_client_gets_tokens_for_its_own_audience(
    provider: OidcProvider, http: httpx.Client
) -> None:
    flow = Flow(provider, provider.other_client_id)
    code = flow.code_of(provider.sign_in(http, flow.url, "bob"))

    stolen = Flow(provider, provider.client_id)
    stolen.verifier = flow.verifier
    assert _exchange(stolen, code).json()["error"] == "invalid_grant"

    response = _exchange(flow, code)
    assert response.status_code == 200, response.text
    token = _verify(provider, response.json()["id_token"], provider.other_client_id, flow.nonce)
    assert token.claims["aud"] == provider.other_client_id


@pytest.mark.parametrize(
    ("password", "otp", "message"),
    [
        pytest.param("wrong", "", "Wrong user or password.", id="wrong-password"),
        pytest.param(None, "", "enter the one-time code", id="missing-otp"),
        pytest.param(None, "000000", "Wrong one-time code.", id="wrong-otp"),
    ],
)
def test_provider_sign_in_form_refuses_wrong_credentials(
    provider: OidcProvider, http: httpx.Client, password: str | None, otp: str, message: str
) -> None:
    flow = Flow(provider, provider.client_id)
    interaction = http.get(flow.url, follow_redirects=True)
    assert interaction.status_code == 200
    login = f"{urlsplit(str(interaction.url)).path}/login"
    alice = provider.users["alice"]
    if otp == "000000" and provider.otp("alice") == otp:  # one chance in a million
        pytest.skip("the real code happens to be 000000")

    response = http.post(
        f"{provider.issuer}{login}",
        data={"user": "alice", "password": password or alice.password, "otp": otp},
        follow_redirects=False,
    )

    assert response.status_code == 401
    assert message in response.text


def test_provider_prompt_login_asks_again_despite_a_session(
    provider: OidcProvider, http: httpx.Client
) -> None:
    assert _sign_in(provider, http, "bob").claims["sub"] == "bob"

    # With the session, a plain request is answered for bob without the form...
    assert _sign_in(provider, http, "alice").claims["sub"] == "bob"
    # ...and prompt=login shows it, so another user (or the same, freshly) can sign in.
    token = _sign_in(provider, http, "alice", prompt="login")
    assert token.claims["sub"] == "alice"
    assert token.claims["amr"] == ["pwd", "otp"]


def test_provider_max_age_asks_for_a_fresh_sign_in(
    provider: OidcProvider, http: httpx.Client
) -> None:
    first = _sign_in(provider, http, "bob")
    time.sleep(max(0.0, first.claims["auth_time"] + 1.1 - time.time()))

    token = _sign_in(provider, http, "bob", max_age="0")

    assert token.claims["auth_time"] > first.claims["auth_time"]


def test_provider_rp_initiated_logout_ends_the_provider_session(
    provider: OidcProvider, http: httpx.Client
) -> None:
    flow = Flow(provider, provider.client_id)
    response = _exchange(flow, flow.code_of(provider.sign_in(http, flow.url, "bob")))
    params = {
        "id_token_hint": response.json()["id_token"],
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "bye",
    }
    end_session = f"{provider.discovery()['end_session_endpoint']}?{urlencode(params)}"

    back = provider.sign_out(http, end_session)

    assert back == f"{SIGNED_OUT}?state=bye"
    # Signed out there: the next request shows the form again.
    again = http.get(Flow(provider, provider.client_id).url, follow_redirects=True)
    assert "/interaction/" in str(again.url)


def test_provider_logout_refuses_an_unregistered_post_logout_uri(
    provider: OidcProvider, http: httpx.Client
) -> None:
    flow = Flow(provider, provider.client_id)
    response = _exchange(flow, flow.code_of(provider.sign_in(http, flow.url, "bob")))
    params = {
        "id_token_hint": response.json()["id_token"],
        "post_logout_redirect_uri": "http://127.0.0.1:9/elsewhere",
    }
    end_session = f"{provider.discovery()['end_session_endpoint']}?{urlencode(params)}"

    with pytest.raises(ProviderError, match="post_logout_redirect_uri"):
        provider.sign_out(http, end_session)


def test_provider_device_flow_signs_a_user_in(provider: OidcProvider, http: httpx.Client) -> None:
    document = provider.discovery()
    started = provider.backchannel.post(
        document["device_authorization_endpoint"],
        data={"client_id": provider.client_id, "scope": "openid email groups"},
        auth=(provider.client_id, provider.client_secret),
    )
    assert started.status_code == 200, started.text
    grant = started.json()
    assert grant["verification_uri"] == f"{provider.issuer}/device"
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": grant["device_code"],
    }
    assert _token(provider, provider.client_id, poll).json()["error"] == "authorization_pending"

    provider.approve_device(http, grant["user_code"], "alice")

    response = _token(provider, provider.client_id, poll)
    assert response.status_code == 200, response.text
    token = _verify(provider, response.json()["id_token"], provider.client_id, nonce=None)
    assert token.claims["sub"] == "alice"
    assert token.claims["amr"] == ["pwd", "otp"]
    assert token.claims["groups"] == ["engineering", "admins"]


def test_provider_device_flow_refuses_an_unknown_user_code(
    provider: OidcProvider, http: httpx.Client
) -> None:
    with pytest.raises(ProviderError, match="not valid"):
        provider.approve_device(http, "BCDF-GHJK", "bob")


def test_provider_restart_rotates_the_signing_key(http: httpx.Client) -> None:
    require_node()
    with OidcProvider([CALLBACK]) as provider:
        first = provider.kids
        assert _sign_in(provider, http, "bob").header["kid"] == first[0]

        provider.restart(rotate_keys=True, keep_old=True)
        published = [
            key["kid"] for key in provider.backchannel.get(f"{provider.issuer}/jwks").json()["keys"]
        ]
        assert published == provider.kids == [provider.kids[0], first[0]]
        assert provider.kids[0] != first[0]
        http.cookies.clear()  # the old run's session is gone with it
        assert _sign_in(provider, http, "bob").header["kid"] == provider.kids[0]

        provider.restart(rotate_keys=True)
        published = [
            key["kid"] for key in provider.backchannel.get(f"{provider.issuer}/jwks").json()["keys"]
        ]
        assert published == provider.kids
        assert len(published) == 1
        assert first[0] not in published


def test_provider_stop_ends_the_process(http: httpx.Client) -> None:
    require_node()
    provider = OidcProvider([CALLBACK])
    with provider:
        assert provider.discovery()["issuer"] == provider.issuer
    with pytest.raises(httpx.TransportError):
        http.get(f"{provider.issuer}/.well-known/openid-configuration")


def test_provider_that_cannot_start_says_why() -> None:
    require_node()
    provider = OidcProvider([CALLBACK])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", provider.port))
        taken.listen()
        with pytest.raises(ProviderError, match="EADDRINUSE"), provider:
            pass


def test_provider_short_id_token_ttl_expires(http: httpx.Client) -> None:
    require_node()
    with OidcProvider([CALLBACK], id_token_ttl=1) as provider:
        flow = Flow(provider, provider.client_id)
        response = _exchange(flow, flow.code_of(provider.sign_in(http, flow.url, "carol")))
        # Its signature only: on a loaded host the second may be over before it is checked.
        jwks = KeySet.import_key_set(provider.backchannel.get(f"{provider.issuer}/jwks").json())
        token = jwt.decode(response.json()["id_token"], jwks, algorithms=["RS256"])

    assert token.claims["exp"] - token.claims["iat"] == 1
    time.sleep(max(0.0, token.claims["exp"] + 1 - time.time()))
    with pytest.raises(ExpiredTokenError):
        jwt.JWTClaimsRegistry(exp={"essential": True}).validate(token.claims)
