"""Where a due reminder goes: a structured log line always, and a signed webhook when configured.

Nothing here carries patient data: a reminder names its case by id only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from models.settings import Settings

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

SIGNATURE_HEADER = "X-Carepath-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a reminder, as every notifier sees it."""

    id: int
    case_id: int
    kind: str
    due_at: datetime
    recipient_role: str
    attempt: int
    state: str
    phase: str
    recipient_ids: tuple[int, ...] = ()
    """The users it goes to: the assigned one, or for an escalation every other user of the
    role; empty when nobody is assigned (then it is for the role)."""
    escalates: int | None = None
    repeat: int = 0
    """0 for the first delivery; n for the n-th repeat of one nobody acknowledged."""

    @property
    def key(self) -> str:
        """The same for every attempt at one delivery, new for each repeat."""
        return str(self.id) if not self.repeat else f"{self.id}-r{self.repeat}"

    def payload(self) -> dict[str, Any]:
        """The JSON body a webhook receives."""
        return {
            "id": self.id,
            "case_id": self.case_id,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "recipient_role": self.recipient_role,
            "recipient_ids": list(self.recipient_ids),
            "escalates": self.escalates,
            "repeat": self.repeat,
            "attempts": self.attempt,
            "state": self.state,
            "phase": self.phase,
        }


class Notifier(Protocol):
    """Delivers a reminder, or raises."""

    def notify(self, delivery: Delivery) -> None: ...


class LogNotifier:
    """Logs each delivery attempt as one key=value line (and the fields as ``extra``)."""

    def notify(self, delivery: Delivery) -> None:
        logger.info(
            "reminder due id=%s case_id=%s kind=%s recipient_role=%s recipients=%s due_at=%s "
            "attempt=%s repeat=%s",
            delivery.id,
            delivery.case_id,
            delivery.kind,
            delivery.recipient_role,
            ",".join(map(str, delivery.recipient_ids)) or "-",
            delivery.due_at.isoformat(),
            delivery.attempt,
            delivery.repeat,
            extra={"reminder": delivery.payload()},
        )


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: an HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookError(Exception):
    """A webhook delivery failed; the message names the receiver by scheme, host and port only."""


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: never its credentials, path or query."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "the webhook URL"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


class WebhookNotifier:
    """POSTs each reminder as JSON; receivers dedupe on ``Idempotency-Key`` (``Delivery.key``).

    A webhook URL may carry a secret in its credentials, path or query: errors
    name only its origin, and httpx's own request log (which prints the whole
    URL) is kept to warnings.
    """

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.origin = origin(url)
        self.secret = secret
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        logging.getLogger("httpx").setLevel(max(logging.WARNING, _httpx_level()))

    def notify(self, delivery: Delivery) -> None:
        body = json.dumps(delivery.payload(), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: delivery.key}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # ``from None``: httpx's message and the chained traceback quote the whole URL.
            raise WebhookError(f"{type(exc).__name__} posting to {self.origin}") from None
        if not response.is_success:
            raise WebhookError(
                f"{response.status_code} {response.reason_phrase} from {self.origin}"
            )

    def close(self) -> None:
        self.client.close()


def _httpx_level() -> int:
    return logging.getLogger("httpx").level


def default_notifiers(rules: Settings) -> list[Notifier]:
    """The log, and the webhook when ``CAREPATH_WEBHOOK_URL`` is set."""
    notifiers: list[Notifier] = [LogNotifier()]
    if rules.webhook_url:
        notifiers.append(
            WebhookNotifier(
                rules.webhook_url,
                secret=rules.webhook_secret,
                timeout=rules.webhook_timeout_seconds,
            )
        )
    return notifiers
