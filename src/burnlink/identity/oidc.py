"""The OpenID Connect relying party: discovery, the authorization request, the code exchange
and the ID token check (docs/identity.md).

Built on Authlib for the protocol's rules (the authorization and token requests, PKCE's
``S256`` challenge, the ID token's claims: ``iss``, ``aud``/``azp``, ``exp``, ``iat``,
``nonce``, ``auth_time``) and on joserfc for the signature, against the provider's JWKS. HTTP
goes through the project's httpx, not Authlib's own client. A key id the JWKS does not hold
makes one new fetch of the JWKS (the provider rotated its keys), at most once per
``refetch_interval`` seconds, so forged tokens cannot make the server hammer the provider.

Every failure is a ``SignInRefused`` with a short reason; nothing here logs or keeps a code or
a token.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from burnlink.config import https_or_loopback
from burnlink.errors import SignInRefused

__all__ = [
    "ALGORITHMS",
    "IdentityClaims",
    "LoginRequest",
    "OidcClient",
    "ProviderMetadata",
]

ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""Signature algorithms an ID token may use: asymmetric only (never ``none`` or HMAC)."""
MAX_DOCUMENT: Final = 256 * 1024
"""Largest discovery document, JWKS or token response read from the provider."""
MAX_ID_TOKEN: Final = 16 * 1024
HTTP_TIMEOUT: Final = 10.0
LEEWAY: Final = 60
"""Seconds of clock skew allowed between this server and the provider."""
DISCOVERY_TTL: Final = 3600.0
_UNAVAILABLE = "The identity provider did not answer. Try again in a minute."


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What discovery says about the provider (the parts burnlink uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]
    device_authorization_endpoint: str | None = None
    """RFC 8628's endpoint, when the provider offers the device grant (``identity.device``)."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """The one-time values of one sign-in: ``state``, ``nonce`` and the PKCE verifier."""

    state: str
    nonce: str
    verifier: str

    @staticmethod
    def new() -> LoginRequest:
        """Fresh random values (256 bits each)."""
        return LoginRequest(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
        )


@dataclass(frozen=True, slots=True)
class IdentityClaims:
    """What a verified ID token says about the user."""

    subject: str
    email: str | None
    """``None`` when absent or when the provider marks it ``email_verified: false``."""
    groups: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str | None
    auth_time: datetime


def _refused(reason: str, message: str) -> SignInRefused:
    return SignInRefused(reason, message)


class OidcClient:
    """One relying party at one provider; see the module docstring."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        email_claim: str = "email",
        groups_claim: str = "groups",
        http: httpx.AsyncClient | None = None,
        refetch_interval: float = 30.0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = scopes
        self.email_claim = email_claim
        self.groups_claim = groups_claim
        self._http = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
        self._refetch_interval = refetch_interval
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._refetched_at = float("-inf")

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http.stream("GET", url, headers={"Accept": "application/json"}) as r:
                body = await _read_capped(r)
        except httpx.HTTPError:
            raise _refused("provider_unavailable", _UNAVAILABLE) from None
        if r.status_code != 200:
            raise _refused(
                "provider_error", f"The identity provider's {what} answered {r.status_code}."
            )
        return _json_object(body, what)

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, fetched on first use and again after an hour."""
        if self._metadata is not None and time.monotonic() - self._metadata_at < DISCOVERY_TTL:
            return self._metadata
        doc = await self._get_json(
            self.issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document"
        )
        if doc.get("issuer") != self.issuer:
            # OpenID Connect Discovery §4.3: the document must name the configured issuer.
            raise _refused(
                "provider_error", "The identity provider's discovery names another issuer."
            )
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not _endpoint(value):
                raise _refused(
                    "provider_error", f"The identity provider's {name} is missing or not https."
                )
            urls[name] = value
        end = doc.get("end_session_endpoint")
        device = doc.get("device_authorization_endpoint")
        supported = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in ALGORITHMS if isinstance(supported, list) and a in supported)
        if not algorithms:
            raise _refused(
                "provider_error",
                "The identity provider signs ID tokens with no algorithm burnlink accepts.",
            )
        self._metadata = ProviderMetadata(
            issuer=self.issuer,
            end_session_endpoint=end if isinstance(end, str) and _endpoint(end) else None,
            algorithms=algorithms,
            device_authorization_endpoint=(
                device if isinstance(device, str) and _endpoint(device) else None
            ),
            **urls,
        )
        self._metadata_at = time.monotonic()
        return self._metadata

    async def authorization_url(
        self, request: LoginRequest, *, redirect_uri: str, max_age: int | None = None
    ) -> str:
        """Where to send the browser: the code flow with PKCE (S256), ``state`` and ``nonce``,
        and ``max_age`` when a fresh sign-in is needed."""
        meta = await self.metadata()
        extra: dict[str, Any] = {
            "nonce": request.nonce,
            "code_challenge": create_s256_code_challenge(request.verifier),
            "code_challenge_method": "S256",
        }
        if max_age is not None:
            extra["max_age"] = str(max_age)
        url: str = prepare_grant_uri(
            meta.authorization_endpoint,
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scopes,
            state=request.state,
            **extra,
        )
        return url

    async def exchange_code(self, code: str, *, redirect_uri: str, verifier: str) -> str:
        """The ID token the provider gives for ``code`` (client_secret_basic)."""
        meta = await self.metadata()
        body: str = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier
        )
        status, raw = await self._post(meta.token_endpoint, body.encode())
        answer = _json_object(raw, "token response")
        if status != 200:
            error = answer.get("error")
            reason = error if isinstance(error, str) and error.isidentifier() else "provider_error"
            # invalid_grant: a code used twice, expired, or issued to another client.
            raise _refused(
                "code_refused" if reason == "invalid_grant" else "provider_error",
                "The identity provider refused to complete the sign-in"
                f" ({reason[:40]}). Start again.",
            )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not 0 < len(id_token) <= MAX_ID_TOKEN:
            raise _refused("id_token_invalid", "The identity provider sent no usable ID token.")
        return id_token

    async def post_form(self, url: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """POST ``form`` to one of the provider's endpoints with this client's credentials
        (client_secret_basic); the status and the JSON object it answers. ``SignInRefused``
        when the provider does not answer or answers with something else than JSON."""
        status, raw = await self._post(url, urlencode(form).encode())
        return status, _json_object(raw, "answer")

    async def _post(self, url: str, form: bytes) -> tuple[int, bytes]:
        """POST the form-encoded ``form`` to ``url`` with this client's credentials
        (client_secret_basic); the status and the body (capped). ``SignInRefused`` when the
        provider does not answer."""
        # RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
        basic = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            async with self._http.stream("POST", url, content=form, headers=headers) as response:
                return response.status_code, await _read_capped(response)
        except httpx.HTTPError:
            raise _refused("provider_unavailable", _UNAVAILABLE) from None

    async def _key_set(self, kid: str | None) -> KeySet:
        meta = await self.metadata()
        if self._keys is None:
            self._keys = await self._fetch_keys(meta)
        elif kid is not None and not _has_kid(self._keys, kid):
            # A key we do not know: the provider may have rotated. Look once, not per token.
            now = time.monotonic()
            if now - self._refetched_at >= self._refetch_interval:
                self._refetched_at = now
                self._keys = await self._fetch_keys(meta)
        return self._keys

    async def _fetch_keys(self, meta: ProviderMetadata) -> KeySet:
        doc = await self._get_json(meta.jwks_uri, "JWKS")
        keys = doc.get("keys")
        if not isinstance(keys, list):
            raise _refused("provider_error", "The identity provider's JWKS holds no keys.")
        usable = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
        try:
            return KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError, KeyError):
            raise _refused(
                "provider_error", "The identity provider's JWKS cannot be read."
            ) from None

    async def verify_id_token(
        self, id_token: str, *, nonce: str | None, max_age: int | None, now: datetime
    ) -> IdentityClaims:
        """The claims of ``id_token`` once its signature, issuer, audience (and ``azp``),
        expiry, issue time, ``nonce`` and (with ``max_age``) ``auth_time`` are checked.

        ``nonce`` is ``None`` only for a grant without one (the device grant, RFC 8628): the
        token then comes straight from the token endpoint, never through a browser."""
        meta = await self.metadata()
        invalid = _refused("id_token_invalid", "The identity provider's ID token did not verify.")
        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise invalid from None
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        if header.get("alg") not in meta.algorithms:
            raise invalid
        try:
            token = jwt.decode(id_token, keys, algorithms=list(meta.algorithms))
        except (JoseError, ValueError, TypeError, KeyError):
            raise invalid from None
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": nonce is not None},
            },
            params={"nonce": nonce, "client_id": self.client_id, "max_age": max_age},
        )
        stamp = int(now.timestamp())
        try:
            claims.validate(now=stamp, leeway=LEEWAY)
        except JoseError as exc:
            reason = "id_token_expired" if exc.error == "expired_token" else "id_token_invalid"
            raise _refused(reason, "The identity provider's ID token did not verify.") from None
        # The nonce again, in constant time (Authlib compares with ==).
        if nonce is not None and not secrets.compare_digest(
            str(claims.get("nonce", "")).encode(), nonce.encode()
        ):
            raise invalid
        return self._identity(claims, stamp, max_age)

    def _identity(self, claims: Mapping[str, Any], now: int, max_age: int | None) -> IdentityClaims:
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 200 or not subject.isprintable():
            raise _refused("id_token_invalid", "The identity provider's subject is not usable.")
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            auth_time = claims["iat"]
        if max_age is not None and now - auth_time > max_age + LEEWAY:
            raise _refused("not_fresh", "The identity provider did not ask you to sign in again.")
        email = claims.get(self.email_claim)
        if not isinstance(email, str) or len(email) > 200 or claims.get("email_verified") is False:
            email = None
        groups = claims.get(self.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        amr = claims.get("amr")
        acr = claims.get("acr")
        return IdentityClaims(
            subject=subject,
            email=email,
            groups=_strings(groups, 100, 200),
            amr=_strings(amr, 20, 50),
            acr=acr if isinstance(acr, str) and len(acr) <= 200 else None,
            auth_time=datetime.fromtimestamp(int(auth_time), UTC),
        )

    async def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, when it has an ``end_session_endpoint``.

        burnlink keeps no ID token (none is stored, by rule), so it names itself with
        ``client_id`` instead of ``id_token_hint`` (RP-Initiated Logout 1.0 §2)."""
        try:
            meta = await self.metadata()
        except SignInRefused:
            return None
        if meta.end_session_endpoint is None:
            return None
        query = urlencode(
            {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        )
        sep = "&" if urlsplit(meta.end_session_endpoint).query else "?"
        return f"{meta.end_session_endpoint}{sep}{query}"


def _strings(value: object, most: int, longest: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value[:most] if isinstance(v, str) and 0 < len(v) <= longest)


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _endpoint(url: str) -> bool:
    return https_or_loopback(url.split("?", 1)[0])


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_DOCUMENT:
            raise _refused("provider_error", "The identity provider's answer is too large.")
    return bytes(body)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise _refused("provider_error", f"The identity provider's {what} is not a JSON object.")
    return value
