import pytest

from inventory.models import Item, Stock

PEN = Item(sku="PEN-1", name="Pen", price_cents=150)


def test_add_and_count() -> None:
    stock = Stock()
    stock.add(PEN, 3)
    assert stock.count(PEN) == 3


def test_remove_too_many() -> None:
    stock = Stock()
    stock.add(PEN, 1)
    with pytest.raises(ValueError, match="not enough PEN-1"):
        stock.remove(PEN, 2)


def test_add_rejects_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        Stock().add(PEN, 0)
