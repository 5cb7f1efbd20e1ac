"""Authentication: an AK/SK-signed JWT or an API key, as an ``httpx.Auth``.

Kling takes two kinds of credentials (KLING_PROTOCOL.md sections 1 and 10):

* an **AccessKey/SecretKey pair**: each request carries ``Authorization: Bearer <jwt>``, an HS256
  JWT with ``iss`` = AccessKey, ``exp`` = now + 1800 s and ``nbf`` = now - 5 s. :class:`KlingAuth`
  signs one token, reuses it, and signs a fresh one shortly before it expires (never per request).
* an **API key** (2026): ``Authorization: Bearer <API_KEY>``. It works on every endpoint and is
  the only credential the new-standard ``/tasks``-style endpoints accept.

When both are configured the API key is used. A ``401`` answering code 1003 (token not yet valid)
or 1004 (expired) makes :class:`KlingAuth` sign a new token and send the request once more; that is
safe even for a create, since Kling refused it before doing anything. If that answer's ``Date``
header shows this machine's clock is off, tokens are signed with Kling's time from then on
(re-signing with the same wrong clock would only be refused again).

Secrets never appear in ``repr()``, logs or error messages.
"""

from __future__ import annotations

import email.utils
import json
import logging
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field

import httpx
import jwt

from klingwatch.clock import Clock, RealClock
from klingwatch.kling.errors import MissingCredentials

__all__ = ["TOKEN_LIFETIME", "TOKEN_REFRESH_MARGIN", "Credentials", "KlingAuth"]

logger = logging.getLogger(__name__)

#: Lifetime of a signed token (the protocol's ``exp = now + 1800``).
TOKEN_LIFETIME = 1800
#: A token is re-signed when less than this many seconds of its life remain. Generous, so a
#: machine clock running a little behind Kling's still never sends an expired token.
TOKEN_REFRESH_MARGIN = 300
#: ``nbf = now - 5``: tolerates a server clock slightly behind ours.
NOT_BEFORE_SLACK = 5
#: Kling codes for "token not yet valid" and "token expired": re-sign and retry once.
RESIGN_CODES = frozenset({1003, 1004})
#: A Date header further off than this is not believed.
MAX_SKEW = 86_400


@dataclass(frozen=True, slots=True)
class Credentials:
    """What klingwatch authenticates with: an AK/SK pair, an API key, or both.

    Values are stripped of surrounding whitespace (a pasted key often carries a newline); the
    ``repr`` shows which kinds are present, never the values.
    """

    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("access_key", "secret_key", "api_key"):
            value = getattr(self, name)
            clean = value.strip() if isinstance(value, str) else None
            object.__setattr__(self, name, clean or None)
        if (self.access_key is None) != (self.secret_key is None) and self.api_key is None:
            missing = "KLING_SECRET_KEY" if self.secret_key is None else "KLING_ACCESS_KEY"
            raise MissingCredentials(
                f"incomplete Kling credentials: {missing} is not set (an AK/SK pair needs both "
                "KLING_ACCESS_KEY and KLING_SECRET_KEY), or set KLING_API_KEY instead"
            )
        if not (self.has_key_pair or self.has_api_key):
            raise MissingCredentials()

    @property
    def has_key_pair(self) -> bool:
        return self.access_key is not None and self.secret_key is not None

    @property
    def has_api_key(self) -> bool:
        return self.api_key is not None

    def __repr__(self) -> str:
        kinds = [k for k, ok in (("ak/sk", self.has_key_pair), ("api_key", self.has_api_key)) if ok]
        return f"Credentials({', '.join(kinds)})"


class KlingAuth(httpx.Auth):
    """Sets ``Authorization`` on every request; re-signs and retries once on 1003/1004.

    ``clock`` gives the time for ``exp``/``nbf`` (wall time, so tokens stay valid under a
    scaled clock). ``signed`` counts tokens signed so far (tests and metrics read it).
    """

    # The re-sign decision needs the error code in a 401 body.
    requires_response_body = True

    def __init__(
        self,
        credentials: Credentials,
        *,
        clock: Clock | None = None,
        lifetime: int = TOKEN_LIFETIME,
        refresh_margin: int = TOKEN_REFRESH_MARGIN,
    ) -> None:
        if not 0 <= refresh_margin < lifetime:
            raise ValueError("refresh_margin must be within [0, lifetime)")
        self._credentials = credentials
        self._clock: Clock = clock or RealClock()
        self._lifetime = lifetime
        self._refresh_margin = refresh_margin
        self._token: str | None = None
        self._expires_at = 0
        #: Seconds Kling's clock is ahead of ours, learnt from a 1003/1004 answer's Date header.
        self.skew = 0.0
        self.signed = 0

    @property
    def uses_api_key(self) -> bool:
        """True when requests carry the API key (accepted by every endpoint)."""
        return self._credentials.has_api_key

    def token(self, *, force: bool = False) -> str:
        """The bearer token to send: the API key, or a cached JWT (signed anew when due)."""
        if self._credentials.api_key is not None:
            return self._credentials.api_key
        now = int(self._clock.time() + self.skew)
        if force or self._token is None or now >= self._expires_at - self._refresh_margin:
            self._token = self._sign(now)
        return self._token

    def _sign(self, now: int) -> str:
        # Credentials guarantees the pair is complete when there is no API key.
        assert self._credentials.access_key is not None
        assert self._credentials.secret_key is not None
        self._expires_at = now + self._lifetime
        claims = {
            "iss": self._credentials.access_key,
            "exp": self._expires_at,
            "nbf": now - NOT_BEFORE_SLACK,
        }
        with warnings.catch_warnings():
            # PyJWT warns about HMAC keys under 32 bytes; Kling issues the secret key, so its
            # length is not the user's to change and the warning would only be noise.
            warnings.filterwarnings("ignore", message=r"The HMAC key is .* bytes long")
            token = jwt.encode(
                claims,
                self._credentials.secret_key,
                algorithm="HS256",
                headers={"alg": "HS256", "typ": "JWT"},
            )
        self.signed += 1
        logger.debug(
            "signed a Kling token valid until %d (token #%d)", self._expires_at, self.signed
        )
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if self.uses_api_key or not _asks_to_resign(response):
            return
        logger.info(
            "Kling answered %s (token not yet valid or expired): re-signing, one retry",
            _code_of(response),
        )
        self._learn_skew(response)
        request.headers["Authorization"] = f"Bearer {self.token(force=True)}"
        yield request

    def _learn_skew(self, response: httpx.Response) -> None:
        """Sign with Kling's time from now on if its ``Date`` shows our clock is off.

        Re-signing with the same wrong clock would be refused again; the answer's ``Date``
        header says what time Kling thinks it is (to the second, hence the 2 s dead band).
        """
        try:
            server = email.utils.parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError):
            return
        skew = server.timestamp() - self._clock.time()
        if 2 <= abs(skew) <= MAX_SKEW:
            logger.warning(
                "this machine's clock is %+.0f s off Kling's; signing tokens with Kling's time "
                "(fix the clock: NTP)",
                -skew,
            )
            self.skew = round(skew)

    def __repr__(self) -> str:
        mode = "api_key" if self.uses_api_key else "jwt"
        return f"KlingAuth(mode={mode!r}, tokens_signed={self.signed})"


def _code_of(response: httpx.Response) -> int | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _asks_to_resign(response: httpx.Response) -> bool:
    return response.status_code == 401 and _code_of(response) in RESIGN_CODES
