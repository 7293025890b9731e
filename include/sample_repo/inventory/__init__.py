"""Stock keeping for a small shop."""

from inventory.models import Item, Stock

__all__ = ["Item", "Stock"]
