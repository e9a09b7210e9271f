"""Products and stores the producer sells, read from the dimension CSVs named in the settings.

The producer never invents a product or a store: every valid event references a row of
`db/data/product_catalog.csv` and `db/data/store_locations.csv`, the same files loaded into
raw.products / raw.stores, so downstream joins always find their dimension row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

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


def read_products(path: Path) -> tuple[Product, ...]:
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(
            Product(
                product_id=row["product_id"],
                name=row["name"],
                category=row["category"],
                price_cents=int(Decimal(row["base_price"]) * 100),
            )
            for row in csv.DictReader(handle)
        )


def read_stores(path: Path) -> tuple[Store, ...]:
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(
            Store(
                store_id=row["store_id"],
                region=row["region"],
                format=row["format"],
                opened_on=date.fromisoformat(row["opened_on"]),
                square_meters=int(row["square_meters"]),
            )
            for row in csv.DictReader(handle)
        )


def load_catalog(settings: Settings) -> Catalog:
    return Catalog(
        products=read_products(settings.product_catalog_csv),
        stores=read_stores(settings.store_locations_csv),
    )
