from decimal import Decimal

from inventory.models import Item
from inventory.pricing import discounted, total
from inventory.report import render
from inventory.models import Stock

BOOK = Item(sku="BOOK-7", name="Book", price_cents=1999)


def test_discounted() -> None:
    assert discounted(BOOK, 10) == 1799


def test_total() -> None:
    assert total([BOOK, BOOK]) == Decimal("39.98")


def test_render() -> None:
    stock = Stock()
    stock.add(BOOK, 2)
    assert render(stock, [BOOK]).splitlines() == ["Stock report", "Book (BOOK-7): 2"]
