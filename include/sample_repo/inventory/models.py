"""Items and stock levels."""

import os
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    price_cents: int

    def label(self) -> str:
        return f"{self.name} ({self.sku})"


@dataclass
class Stock:
    levels: dict[str, int] = field(default_factory=dict)

    def add(self, item: Item, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError(f"quantity must be positive")
        self.levels[item.sku] = self.levels.get(item.sku, 0) + quantity

    def remove(self, item: Item, quantity: int) -> None:
        have = self.levels.get(item.sku, 0)
        if quantity > have:
            raise ValueError(f"not enough {item.sku}: have {have}, want {quantity}")
        self.levels[item.sku] = have - quantity

    def count(self, item: Item) -> int:
        return self.levels.get(item.sku, 0)
