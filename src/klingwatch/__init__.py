"""klingwatch: submit, track and collect Kling AI generation tasks.

The public Python API is declared once, here; see ``__all__``.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from klingwatch.clock import Clock, ManualClock, RealClock, ScaledClock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import (
    APIError,
    BadResponse,
    KlingError,
    MissingCredentials,
    RequestValidationError,
    TransportError,
    WaitTimeout,
)
from klingwatch.kling.models import ApiStandard, Task, TaskStatus
from klingwatch.kling.products import PRODUCTS, Family, Product, get_product
from klingwatch.kling.retry import Backoff, RetryPolicy
from klingwatch.kling.stats import ClientStats
from klingwatch.kling.webhooks import parse_callback, verify_signature

try:
    __version__ = _version("klingwatch")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "PRODUCTS",
    "APIError",
    "ApiStandard",
    "Backoff",
    "BadResponse",
    "ClientStats",
    "Clock",
    "Family",
    "KlingClient",
    "KlingError",
    "KlingwatchError",
    "ManualClock",
    "MissingCredentials",
    "Product",
    "RealClock",
    "RequestValidationError",
    "RetryPolicy",
    "ScaledClock",
    "Task",
    "TaskStatus",
    "TransportError",
    "WaitTimeout",
    "__version__",
    "get_product",
    "parse_callback",
    "verify_signature",
]
