"""Products and stores the producer sells: the rows of the dimension CSVs that the loader accepts.

Read through the same spec and row rules as the loader (`retail.dimension_files`), so the producer
never sells a product or store that raw.products / raw.stores lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from retail.dimension_files import read_products, read_stores
from retail.settings import Settings


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price_cents: int


@dataclass(frozen=True)
class Store:
    store_id: str
    region: str
    format: str
    opened_on: date
    square_meters: int


@dataclass(frozen=True)
class Catalog:
    """Products in catalog order (the order the popularity law and the planted products rely on)."""

    products: tuple[Product, ...]
    stores: tuple[Store, ...]

    @property
    def product_ids(self) -> frozenset[str]:
        return frozenset(product.product_id for product in self.products)

    @property
    def store_ids(self) -> frozenset[str]:
        return frozenset(store.store_id for store in self.stores)


def _products(path: Path) -> tuple[Product, ...]:
    return tuple(
        Product(
            product_id=row["product_id"],
            name=row["name"],
            category=row["category"],
            price_cents=int(row["base_price"] * 100),
        )
        for row in read_products(path).rows
    )


def _stores(path: Path) -> tuple[Store, ...]:
    return tuple(
        Store(
            store_id=row["store_id"],
            region=row["region"],
            format=row["format"] or "",
            opened_on=row["opened_on"],
            square_meters=row["square_meters"],
        )
        for row in read_stores(path).rows
    )


def load_catalog(settings: Settings) -> Catalog:
    return Catalog(
        products=_products(settings.product_catalog_csv),
        stores=_stores(settings.store_locations_csv),
    )
