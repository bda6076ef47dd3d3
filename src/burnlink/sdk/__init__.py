"""burnlink's Python SDK: share, get, status, burn, request and answer, end-to-end encrypted
(docs/sdk.md).

    from burnlink import Client

    with Client("https://secrets.example.com") as client:
        shared = client.share("db password: hunter2", ttl=3600)
        print(shared.url)

Errors are ``burnlink.errors`` classes (re-exported here), each with the API's ``code``.
"""

from burnlink.errors import (
    AccessDenied,
    AddressDenied,
    BurnlinkError,
    CreateNotAllowed,
    EnvelopeError,
    GeoDenied,
    InsufficientScope,
    InvalidApiToken,
    InvalidInput,
    IpDenied,
    KeyMismatch,
    LoginRequired,
    MfaRequired,
    NotPermitted,
    PassphraseRequired,
    PayloadTooLarge,
    RateLimited,
    RecipientMismatch,
    RequestAnswered,
    RequestExpired,
    RequestNotAnswered,
    RequestTimedOut,
    SecretUnavailable,
    SignInRequired,
    StorageUnavailable,
    TeamPolicyRefused,
    VerificationFailed,
    VerificationRequired,
    WrongPassphrase,
)
from burnlink.sdk.client import ApiClient, AsyncClient, Client
from burnlink.sdk.models import (
    AccessRules,
    Answered,
    Event,
    Policy,
    Receipt,
    Requested,
    Revealed,
    Shared,
    Viewer,
)
from burnlink.sdk.protocol import ServerUnavailable

__all__ = [
    "AccessDenied",
    "AccessRules",
    "AddressDenied",
    "Answered",
    "ApiClient",
    "AsyncClient",
    "BurnlinkError",
    "Client",
    "CreateNotAllowed",
    "EnvelopeError",
    "Event",
    "GeoDenied",
    "InsufficientScope",
    "InvalidApiToken",
    "InvalidInput",
    "IpDenied",
    "KeyMismatch",
    "LoginRequired",
    "MfaRequired",
    "NotPermitted",
    "PassphraseRequired",
    "PayloadTooLarge",
    "Policy",
    "RateLimited",
    "Receipt",
    "RecipientMismatch",
    "RequestAnswered",
    "RequestExpired",
    "RequestNotAnswered",
    "RequestTimedOut",
    "Requested",
    "Revealed",
    "SecretUnavailable",
    "ServerUnavailable",
    "Shared",
    "SignInRequired",
    "StorageUnavailable",
    "TeamPolicyRefused",
    "VerificationFailed",
    "VerificationRequired",
    "Viewer",
    "WrongPassphrase",
]
