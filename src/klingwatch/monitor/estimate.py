"""A rough unit estimate for ``submit --dry-run``.

Kling deducts resource-pack units per task by product, model, mode (or resolution) and duration,
and changes its prices from time to time. This table is a planning aid, **not** a price list:
the real deduction is what Kling reports (``final_unit_deduction``), which the ledger records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from klingwatch.kling.products import Family, get_product

__all__ = ["ESTIMATE_NOTE", "estimate_total", "estimate_units"]

#: Said wherever an estimate is shown.
ESTIMATE_NOTE = (
    "an estimate from a rough per-product/mode/duration table; Kling's actual deduction "
    "(final_unit_deduction) may differ"
)

# Units of a 5-second video by model prefix and quality ("std"/"pro", or resolution).
_VIDEO_5S: dict[str, dict[str, Decimal]] = {
    "kling-v1": {"std": Decimal(1), "pro": Decimal("3.5")},
    "kling-v1-5": {"std": Decimal(2), "pro": Decimal("3.5")},
    "kling-v1-6": {"std": Decimal(2), "pro": Decimal("3.5")},
    "kling-v2-master": {"std": Decimal(10), "pro": Decimal(10)},
    "kling-v2-1-master": {"std": Decimal(10), "pro": Decimal(10)},
}
_DEFAULT_5S = {
    "std": Decimal("1.5"),
    "pro": Decimal("2.5"),
    "720p": Decimal("1.5"),
    "1080p": Decimal("2.5"),
    "4k": Decimal(5),
}


def _setting(request: Mapping[str, Any], key: str) -> Any:
    if key in request:
        return request[key]
    settings = request.get("settings")
    return settings.get(key) if isinstance(settings, Mapping) else None


def estimate_units(product: str, request: Mapping[str, Any]) -> Decimal:
    """Roughly how many units one task of ``request`` costs (see :data:`ESTIMATE_NOTE`)."""
    return _units(product, request).normalize()


def _units(product: str, request: Mapping[str, Any]) -> Decimal:
    prod = get_product(product)
    if prod.family is Family.IMAGE:
        return Decimal("0.25") * prod.slot_cost(request)
    if prod.family is Family.TRY_ON:
        return Decimal(1)
    if prod.name == "lip-sync":
        return Decimal("0.5")
    if prod.name == "video-extend":
        return Decimal("1.5")  # adds about 5 s
    quality = str(_setting(request, "mode") or _setting(request, "resolution") or "std")
    table = _VIDEO_5S.get(prod.model_of(request) or "kling-v1", _DEFAULT_5S)
    per_5s = table.get(quality, _DEFAULT_5S.get(quality, _DEFAULT_5S["std"]))
    try:
        seconds = Decimal(str(_setting(request, "duration") or 5))
    except ArithmeticError:
        seconds = Decimal(5)
    return per_5s * seconds / 5


def estimate_total(items: Iterable[tuple[str, Mapping[str, Any]]]) -> Decimal:
    """The summed estimate of ``(product, request)`` pairs."""
    return sum((estimate_units(p, r) for p, r in items), Decimal(0)).normalize()
