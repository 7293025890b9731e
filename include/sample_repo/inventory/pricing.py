"""Prices, discounts and totals."""

from decimal import Decimal
import math

from inventory.models import Item


def discounted(item: Item, percent: int) -> int:
    if not 0 <= percent <= 100:
        raise ValueError(f"percent out of range")
    return math.floor(item.price_cents * (100 - percent) / 100)


def total(items: list[Item]) -> Decimal:
    cents = sum(item.price_cents for item in items)
    return Decimal(cents) / 100
