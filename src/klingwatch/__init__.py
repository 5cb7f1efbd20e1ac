"""klingwatch: submit, track and collect Kling AI generation tasks.

The public Python API is declared once, here; see ``__all__``.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from klingwatch.clock import Clock, ManualClock, RealClock, ScaledClock
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

try:
    __version__ = _version("klingwatch")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "PRODUCTS",
    "APIError",
    "ApiStandard",
    "BadResponse",
    "Clock",
    "Family",
    "KlingError",
    "ManualClock",
    "MissingCredentials",
    "Product",
    "RealClock",
    "RequestValidationError",
    "ScaledClock",
    "Task",
    "TaskStatus",
    "TransportError",
    "WaitTimeout",
    "__version__",
    "get_product",
]
