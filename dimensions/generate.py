"""Generate the product and store dimension CSVs (``product_catalog.csv``, ``store_locations.csv``).

Every stage joins against the same products and stores, so they are committed data, and the generator is
deterministic (seeded ``random.Random``, fixed row order, ``\\n`` line endings, no "now"): a rerun
reproduces the committed files byte for byte, and any change shows up as a reviewable diff. Products
P0001-P0018 are fixed: the simulator plants co-purchase affinities between them.

    python -m dimensions.generate              # writes into db/data/
    python -m dimensions.generate --out /tmp/dims
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from retail.dimension_files import PRODUCTS, STORES
from retail.settings import PROJECT_ROOT

DEFAULT_OUT_DIR = PROJECT_ROOT / "db" / "data"
PRODUCT_CATALOG_FILE = "product_catalog.csv"
STORE_LOCATIONS_FILE = "store_locations.csv"

# Separate seeds per table so that editing the product list never reshuffles the stores.
PRODUCT_SEED = 20_240_501
STORE_SEED = 20_240_502

# Unit cost as a share of base price; every category stays inside this overall band.
MIN_COST_RATIO = 0.45
MAX_COST_RATIO = 0.80


class PlantedProduct(NamedTuple):
    """A product with a fixed id, name and price that the simulator relies on."""

    name: str
    category: str
    brand: str
    base_price: str


class CatalogItem(NamedTuple):
    """A product line within a category and the shelf-price range it sells in."""

    name: str
    min_price: float
    max_price: float


class Category(NamedTuple):
    """A product category: its brands, typical cost ratio band and product lines."""

    name: str
    brands: tuple[str, ...]
    cost_ratio: tuple[float, float]
    items: tuple[CatalogItem, ...]


class StoreSite(NamedTuple):
    """A store's fixed location and format; dates and floor areas are drawn."""

    city: str
    neighbourhood: str
    region: str
    latitude: float
    longitude: float
    format: str


# Listed first, in this order, as P0001..P0018: the affinity pairs are (P0001, P0002),
# (P0003, P0004), ..., (P0015, P0016), plus the pizza pair P0017/P0018.
PLANTED_PRODUCTS: tuple[PlantedProduct, ...] = (
    PlantedProduct("Spaghetti 500g", "Pasta & Grains", "Bellavita", "1.49"),
    PlantedProduct("Tomato Basil Pasta Sauce 400g", "Sauces & Condiments", "Bellavita", "2.79"),
    PlantedProduct("Smartphone Nova X 128GB", "Electronics", "Nova", "599.99"),
    PlantedProduct("Nova X Protective Case", "Phone Accessories", "Nova", "24.99"),
    PlantedProduct("Tortilla Chips 300g", "Snacks", "Crunchtime", "2.99"),
    PlantedProduct("Chunky Salsa Dip 250g", "Sauces & Condiments", "El Mirador", "2.49"),
    PlantedProduct("Espresso Coffee Beans 1kg", "Coffee & Tea", "Roastery Hill", "17.99"),
    PlantedProduct("Coffee Filters No.4 (100)", "Coffee & Tea", "Morning Ritual", "2.29"),
    PlantedProduct("Inkjet Printer Jetline 2700", "Electronics", "Jetline", "79.99"),
    PlantedProduct("Jetline 2700 Ink Cartridge Black", "Electronics", "Jetline", "24.99"),
    PlantedProduct("Burger Buns 6-pack", "Bakery", "Golden Crust", "2.19"),
    PlantedProduct("Beef Burger Patties 4x113g", "Meat & Seafood", "Prairie Ranch", "6.49"),
    PlantedProduct("Baby Diapers Size 3 (52)", "Baby", "Little Sprout", "12.99"),
    PlantedProduct("Baby Wipes Sensitive (80)", "Baby", "Little Sprout", "3.49"),
    PlantedProduct("Dog Food Adult Chicken 2kg", "Pet Supplies", "Happy Paws", "11.99"),
    PlantedProduct("Dog Chew Treats (12)", "Pet Supplies", "Happy Paws", "5.99"),
    PlantedProduct("Mozzarella 125g", "Dairy & Eggs", "Alpine Valley", "1.29"),
    PlantedProduct("Pizza Dough Ready-Rolled 400g", "Bakery", "Golden Crust", "2.69"),
)


def _items(*rows: tuple[str, float, float]) -> tuple[CatalogItem, ...]:
    return tuple(CatalogItem(*row) for row in rows)


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Pasta & Grains",
        ("Bellavita", "Casa Rustica", "Golden Field", "Harvest Mill"),
        (0.55, 0.75),
        _items(
            ("Penne Rigate 500g", 0.99, 2.49),
            ("Fusilli 500g", 0.99, 2.49),
            ("Farfalle 500g", 1.19, 2.69),
            ("Linguine 500g", 1.19, 2.69),
            ("Whole Wheat Spaghetti 500g", 1.29, 2.99),
            ("Egg Tagliatelle 250g", 1.99, 3.99),
            ("Lasagne Sheets 500g", 1.49, 3.29),
            ("Basmati Rice 1kg", 2.49, 4.99),
            ("Jasmine Rice 2kg", 3.99, 7.99),
            ("Long Grain Rice 5kg", 7.99, 13.99),
            ("Arborio Risotto Rice 1kg", 2.99, 5.49),
            ("Couscous 500g", 1.49, 2.99),
            ("Quinoa 500g", 3.49, 6.99),
            ("Rolled Oats 1kg", 1.99, 3.99),
        ),
    ),
    Category(
        "Sauces & Condiments",
        ("Bellavita", "Nonna's Table", "Sunridge", "El Mirador", "Kitchen Classic"),
        (0.50, 0.72),
        _items(
            ("Arrabbiata Pasta Sauce 400g", 1.99, 3.49),
            ("Basil Pesto 190g", 2.29, 4.49),
            ("Tomato Ketchup 500ml", 1.49, 3.29),
            ("Yellow Mustard 250g", 0.99, 2.49),
            ("Mayonnaise 400ml", 1.99, 3.99),
            ("Soy Sauce 250ml", 1.49, 3.29),
            ("BBQ Sauce 500ml", 1.99, 3.99),
            ("Hot Sauce 150ml", 1.99, 4.29),
            ("Sweet Chili Sauce 300ml", 1.79, 3.49),
            ("Guacamole Dip 200g", 2.49, 3.99),
            ("Balsamic Vinegar 500ml", 2.99, 6.99),
            ("Extra Virgin Olive Oil 750ml", 5.99, 12.99),
        ),
    ),
    Category(
        "Dairy & Eggs",
        ("Meadowbrook", "Alpine Valley", "Green Pasture", "Dairy Fresh"),
        (0.62, 0.80),
        _items(
            ("Whole Milk 1L", 0.89, 1.69),
            ("Semi-Skimmed Milk 2L", 1.49, 2.79),
            ("Oat Milk 1L", 1.69, 2.99),
            ("Greek Yogurt 500g", 2.29, 3.99),
            ("Strawberry Yogurt 4x125g", 1.79, 3.29),
            ("Salted Butter 250g", 2.29, 3.99),
            ("Mature Cheddar 400g", 3.49, 5.99),
            ("Parmesan Wedge 200g", 3.99, 6.49),
            ("Cream Cheese 200g", 1.49, 2.99),
            ("Heavy Cream 250ml", 1.29, 2.49),
            ("Free-Range Eggs (12)", 3.29, 5.49),
            ("Large Eggs (6)", 1.79, 2.99),
        ),
    ),
    Category(
        "Bakery",
        ("Golden Crust", "Baker's Lane", "Stonebake"),
        (0.45, 0.65),
        _items(
            ("White Sandwich Bread 800g", 1.29, 2.49),
            ("Whole Wheat Bread 800g", 1.49, 2.99),
            ("Sourdough Loaf 800g", 2.99, 4.99),
            ("Baguette 250g", 0.99, 1.99),
            ("Ciabatta Rolls (4)", 1.79, 2.99),
            ("Hot Dog Rolls 6-pack", 1.49, 2.49),
            ("Bagels Plain (5)", 1.99, 3.29),
            ("Butter Croissants (4)", 2.29, 3.99),
            ("Blueberry Muffins (4)", 2.49, 4.29),
            ("Cinnamon Rolls (4)", 2.79, 4.49),
            ("Flour Tortillas (8)", 1.49, 2.79),
        ),
    ),
    Category(
        "Produce",
        ("Fresh Acres", "Sunny Orchard", "Green Valley Farms"),
        (0.50, 0.70),
        _items(
            ("Bananas 1kg", 0.99, 1.79),
            ("Gala Apples 1kg", 1.99, 3.49),
            ("Avocados Ripe (2)", 1.99, 3.49),
            ("Lemons (4)", 1.29, 2.29),
            ("Strawberries 400g", 2.49, 4.49),
            ("Blueberries 125g", 1.99, 3.49),
            ("Baby Spinach 200g", 1.49, 2.79),
            ("Cherry Tomatoes 250g", 1.49, 2.69),
            ("Carrots 1kg", 0.79, 1.49),
            ("Yellow Onions 1kg", 0.89, 1.69),
            ("Russet Potatoes 2.5kg", 2.29, 3.99),
            ("Garlic Bulbs (3)", 0.99, 1.79),
            ("Cucumber (each)", 0.59, 1.19),
            ("Iceberg Lettuce (each)", 0.79, 1.49),
        ),
    ),
    Category(
        "Meat & Seafood",
        ("Prairie Ranch", "Coastal Catch", "Farmhouse Select"),
        (0.60, 0.80),
        _items(
            ("Chicken Breast Fillets 500g", 4.99, 8.99),
            ("Chicken Thighs 1kg", 4.49, 7.99),
            ("Ground Beef 500g", 3.99, 6.99),
            ("Ribeye Steak 300g", 8.99, 15.99),
            ("Pork Sausages (6)", 2.99, 4.99),
            ("Smoked Bacon 200g", 2.49, 4.49),
            ("Pork Loin Chops 500g", 3.99, 6.99),
            ("Lamb Mince 500g", 4.99, 8.49),
            ("Sliced Turkey Breast 150g", 2.29, 3.99),
            ("Atlantic Salmon Fillets 2x125g", 4.49, 7.99),
            ("Cooked Shrimp 200g", 3.99, 6.99),
            ("Tuna Steaks 2x140g", 4.99, 8.49),
        ),
    ),
    Category(
        "Beverages",
        ("Sparkwell", "Clearspring", "Orchard Gold", "Fizzco"),
        (0.45, 0.65),
        _items(
            ("Still Water 6x500ml", 1.99, 3.99),
            ("Sparkling Water 1.5L", 0.69, 1.49),
            ("Orange Juice 1L", 1.99, 3.49),
            ("Apple Juice 1L", 1.49, 2.99),
            ("Cranberry Juice 1L", 2.29, 3.79),
            ("Cola 2L", 1.79, 2.99),
            ("Diet Cola 6x330ml", 3.49, 5.49),
            ("Lemon-Lime Soda 2L", 1.69, 2.79),
            ("Ginger Ale 6x330ml", 3.29, 4.99),
            ("Iced Tea Peach 1.5L", 1.49, 2.49),
            ("Energy Drink 250ml", 1.29, 2.29),
            ("Sports Drink 750ml", 1.29, 2.29),
            ("Coconut Water 1L", 2.49, 3.99),
        ),
    ),
    Category(
        "Snacks",
        ("Crunchtime", "Golden Field", "Trailhead", "Cocoa Lane"),
        (0.45, 0.65),
        _items(
            ("Salted Potato Chips 150g", 1.49, 2.79),
            ("Sour Cream & Onion Chips 150g", 1.49, 2.79),
            ("Pretzels 300g", 1.79, 2.99),
            ("Microwave Popcorn 3-pack", 1.99, 3.49),
            ("Salted Peanuts 200g", 1.49, 2.99),
            ("Trail Mix 400g", 3.99, 6.99),
            ("Rice Cakes 130g", 1.29, 2.29),
            ("Granola Bars (6)", 2.49, 4.29),
            ("Milk Chocolate Bar 100g", 0.99, 2.29),
            ("Dark Chocolate 70% 100g", 1.49, 2.99),
            ("Chocolate Chip Cookies 300g", 1.99, 3.49),
            ("Gummy Bears 200g", 1.29, 2.49),
        ),
    ),
    Category(
        "Coffee & Tea",
        ("Roastery Hill", "Morning Ritual", "Tea Garden"),
        (0.45, 0.65),
        _items(
            ("Ground Coffee Medium Roast 250g", 3.99, 6.99),
            ("Decaf Ground Coffee 250g", 4.29, 7.49),
            ("Instant Coffee 200g", 4.99, 8.99),
            ("Coffee Pods Espresso (10)", 3.49, 5.49),
            ("Coffee Pods Lungo (10)", 3.49, 5.49),
            ("Cold Brew Coffee 1L", 3.99, 5.99),
            ("English Breakfast Tea (80)", 2.99, 5.49),
            ("Earl Grey Tea (50)", 2.49, 4.49),
            ("Green Tea (40)", 2.29, 3.99),
            ("Chamomile Tea (20)", 1.99, 3.49),
            ("Chai Latte Mix 250g", 3.49, 5.99),
        ),
    ),
    Category(
        "Household",
        ("BrightHome", "CleanPeak", "EcoNest"),
        (0.50, 0.70),
        _items(
            ("Laundry Detergent 2L", 6.99, 13.99),
            ("Fabric Softener 1.5L", 3.49, 5.99),
            ("Dishwasher Tablets (40)", 6.99, 12.99),
            ("Dish Soap 750ml", 1.99, 3.49),
            ("All-Purpose Cleaner 750ml", 2.49, 4.49),
            ("Glass Cleaner 500ml", 2.29, 3.99),
            ("Bleach 1L", 1.29, 2.49),
            ("Paper Towels 6-roll", 5.99, 9.99),
            ("Toilet Paper 12-roll", 6.99, 12.99),
            ("Trash Bags 30L (50)", 3.99, 6.99),
            ("Kitchen Sponges 5-pack", 1.99, 3.49),
            ("Aluminium Foil 30m", 2.99, 4.99),
            ("Cling Film 30m", 1.99, 3.49),
        ),
    ),
    Category(
        "Personal Care",
        ("Purelle", "Nordic Care", "Verdana"),
        (0.45, 0.65),
        _items(
            ("Shampoo 400ml", 3.49, 7.99),
            ("Conditioner 400ml", 3.49, 7.99),
            ("Body Wash 500ml", 2.99, 6.49),
            ("Hand Soap 300ml", 1.49, 3.49),
            ("Toothpaste 125ml", 1.99, 4.49),
            ("Soft Toothbrush 2-pack", 2.49, 5.49),
            ("Mouthwash 500ml", 3.49, 6.49),
            ("Deodorant Roll-On 50ml", 2.49, 4.99),
            ("Facial Cleanser 150ml", 5.99, 12.99),
            ("Moisturizing Lotion 400ml", 4.99, 9.99),
            ("Sunscreen SPF50 200ml", 7.99, 14.99),
            ("Disposable Razors (4)", 3.99, 7.99),
            ("Cotton Swabs (200)", 1.49, 2.99),
        ),
    ),
    Category(
        "Baby",
        ("Little Sprout", "Cuddle Co", "BabyBright"),
        (0.55, 0.78),
        _items(
            ("Baby Diapers Size 1 (44)", 9.99, 14.99),
            ("Baby Diapers Size 4 (46)", 11.99, 16.99),
            ("Swim Diapers (12)", 6.99, 10.99),
            ("Infant Formula Stage 1 800g", 19.99, 34.99),
            ("Baby Rice Cereal 200g", 2.49, 4.49),
            ("Baby Food Apple Puree 4x100g", 2.29, 3.99),
            ("Baby Shampoo 300ml", 3.49, 5.99),
            ("Baby Lotion 200ml", 3.99, 6.99),
            ("Diaper Rash Cream 100g", 4.49, 7.99),
            ("Sippy Cup 250ml", 5.99, 9.99),
            ("Pacifiers 2-pack", 4.99, 8.99),
        ),
    ),
    Category(
        "Pet Supplies",
        ("Happy Paws", "WhiskerWell", "Trailpup"),
        (0.50, 0.70),
        _items(
            ("Dog Food Adult Beef 10kg", 29.99, 49.99),
            ("Puppy Food Lamb 2.5kg", 12.99, 19.99),
            ("Dry Cat Food Salmon 2kg", 9.99, 15.99),
            ("Wet Cat Food 12x85g", 6.99, 10.99),
            ("Cat Treats 60g", 1.99, 3.49),
            ("Cat Litter Clumping 10L", 6.99, 11.99),
            ("Dog Poop Bags (120)", 3.99, 6.99),
            ("Dog Shampoo 250ml", 5.99, 9.99),
            ("Rope Tug Toy", 4.99, 9.99),
            ("Cat Scratching Post", 19.99, 39.99),
            ("Stainless Steel Pet Bowl", 5.99, 11.99),
        ),
    ),
    Category(
        "Electronics",
        ("Nova", "Jetline", "Voltaris", "Sonique", "Lumatek"),
        (0.68, 0.80),
        _items(
            ("Smartphone Nova X 256GB", 679.99, 749.99),
            ("Jetline 2700 Ink Cartridge Colour", 26.99, 32.99),
            ("Laptop 15.6-inch 512GB SSD", 549.99, 899.99),
            ("Tablet 10-inch 64GB", 149.99, 299.99),
            ("Smart TV 43-inch 4K", 279.99, 449.99),
            ("Monitor 27-inch QHD", 179.99, 329.99),
            ("Smartwatch Active 2", 129.99, 249.99),
            ("Noise-Cancelling Headphones", 99.99, 299.99),
            ("Wireless Earbuds", 39.99, 129.99),
            ("Bluetooth Speaker", 29.99, 99.99),
            ("Smart Home Speaker", 34.99, 99.99),
            ("External SSD 1TB", 69.99, 129.99),
            ("USB Flash Drive 64GB", 15.49, 19.99),
            ("Wireless Mouse", 15.99, 39.99),
            ("Mechanical Keyboard", 49.99, 129.99),
        ),
    ),
    Category(
        "Phone Accessories",
        ("Nova", "Voltaris", "ArmorShell", "ChargeUp"),
        (0.45, 0.60),
        _items(
            ("Nova X Screen Protector 2-pack", 9.99, 19.99),
            ("Clear Case Universal 6.1-inch", 7.99, 14.99),
            ("Phone Grip Stand", 5.99, 12.99),
            ("USB-C Charging Cable 1m", 6.99, 14.99),
            ("USB-C Charging Cable 2m", 8.99, 17.99),
            ("Lightning Cable 1m", 7.99, 16.99),
            ("20W USB-C Wall Charger", 12.99, 24.99),
            ("Dual USB Car Charger", 8.99, 17.99),
            ("Wireless Charging Pad", 14.99, 34.99),
            ("Power Bank 10000mAh", 19.99, 39.99),
            ("Car Phone Mount", 11.99, 24.99),
            ("Wired Earphones USB-C", 9.99, 19.99),
        ),
    ),
    Category(
        "Apparel",
        ("Northbound", "Urban Thread", "Basics & Co", "Stride"),
        (0.45, 0.60),
        _items(
            ("Men's Crew T-Shirt", 8.99, 19.99),
            ("Women's V-Neck T-Shirt", 8.99, 19.99),
            ("Athletic Socks 6-pack", 9.99, 16.99),
            ("Hooded Sweatshirt", 24.99, 49.99),
            ("Fleece Pullover", 29.99, 59.99),
            ("Flannel Shirt", 19.99, 39.99),
            ("Slim Fit Jeans", 29.99, 69.99),
            ("Chino Pants", 24.99, 49.99),
            ("Running Shorts", 14.99, 29.99),
            ("Women's Leggings", 14.99, 34.99),
            ("Rain Jacket", 39.99, 89.99),
            ("Winter Parka", 79.99, 119.99),
            ("Baseball Cap", 9.99, 24.99),
            ("Knit Beanie", 8.99, 19.99),
        ),
    ),
    Category(
        "Toys & Games",
        ("PlayNest", "BrickWorks", "Funfactory"),
        (0.50, 0.65),
        _items(
            ("Building Blocks Set 500pcs", 24.99, 49.99),
            ("Jigsaw Puzzle 1000pcs", 12.99, 19.99),
            ("Family Board Game", 19.99, 39.99),
            ("Party Card Game", 9.99, 24.99),
            ("Playing Cards 2-pack", 3.99, 7.99),
            ("Plush Teddy Bear 30cm", 12.99, 24.99),
            ("Remote Control Car", 29.99, 69.99),
            ("Modeling Dough 8-pack", 5.99, 11.99),
            ("Action Figure 15cm", 9.99, 19.99),
            ("Fashion Doll", 12.99, 24.99),
            ("Water Blaster", 7.99, 19.99),
            ("Kids Art Set", 14.99, 29.99),
            ("Soccer Ball Size 5", 9.99, 24.99),
        ),
    ),
    Category(
        "Home & Kitchen",
        ("Hearth & Co", "Kitchenry", "Nordvik"),
        (0.45, 0.62),
        _items(
            ("Nonstick Frying Pan 28cm", 19.99, 44.99),
            ("Stainless Steel Saucepan 2L", 19.99, 39.99),
            ("Chef's Knife 20cm", 19.99, 59.99),
            ("Bamboo Cutting Board", 9.99, 24.99),
            ("Glass Food Storage Set (5)", 19.99, 34.99),
            ("Dinner Plates Set (4)", 19.99, 39.99),
            ("Electric Kettle 1.7L", 24.99, 49.99),
            ("Toaster 2-Slice", 24.99, 59.99),
            ("Drip Coffee Maker", 29.99, 79.99),
            ("Blender 1.5L", 39.99, 99.99),
            ("LED Desk Lamp", 19.99, 44.99),
            ("Cotton Bath Towel", 9.99, 19.99),
            ("Queen Sheet Set", 34.99, 79.99),
            ("Scented Candle 200g", 7.99, 16.99),
        ),
    ),
)

# Coordinates are the approximate centre of the named neighbourhood (4 decimals). Dense
# downtown sites are small-format; hypermarkets sit in suburban retail corridors.
STORE_SITES: tuple[StoreSite, ...] = (
    StoreSite("New York", "Midtown", "Northeast", 40.7549, -73.9840, "express"),
    StoreSite("New York", "Park Slope", "Northeast", 40.6710, -73.9814, "express"),
    StoreSite("Boston", "Back Bay", "Northeast", 42.3503, -71.0810, "supermarket"),
    StoreSite("Philadelphia", "Center City", "Northeast", 39.9526, -75.1652, "supermarket"),
    StoreSite("Pittsburgh", "Shadyside", "Northeast", 40.4541, -79.9345, "supermarket"),
    StoreSite("Paramus", "Route 17", "Northeast", 40.9445, -74.0754, "hypermarket"),
    StoreSite("Atlanta", "Midtown", "Southeast", 33.7812, -84.3838, "supermarket"),
    StoreSite("Miami", "Brickell", "Southeast", 25.7590, -80.1937, "express"),
    StoreSite("Charlotte", "Uptown", "Southeast", 35.2271, -80.8431, "express"),
    StoreSite("Nashville", "The Gulch", "Southeast", 36.1512, -86.7846, "supermarket"),
    StoreSite("Tampa", "Westshore", "Southeast", 27.9505, -82.5260, "hypermarket"),
    StoreSite("Chicago", "Lincoln Park", "Midwest", 41.9214, -87.6513, "express"),
    StoreSite("Chicago", "Hyde Park", "Midwest", 41.7943, -87.5907, "supermarket"),
    StoreSite("Schaumburg", "Woodfield", "Midwest", 42.0459, -88.0373, "hypermarket"),
    StoreSite("Minneapolis", "Uptown", "Midwest", 44.9489, -93.2983, "supermarket"),
    StoreSite("Columbus", "Short North", "Midwest", 39.9790, -83.0035, "express"),
    StoreSite("Kansas City", "Westport", "Midwest", 39.0533, -94.5916, "supermarket"),
    StoreSite("Dallas", "Uptown", "Southwest", 32.8010, -96.8010, "express"),
    StoreSite("Plano", "Legacy West", "Southwest", 33.0776, -96.8236, "hypermarket"),
    StoreSite("Houston", "Montrose", "Southwest", 29.7447, -95.3908, "supermarket"),
    StoreSite("Austin", "South Congress", "Southwest", 30.2490, -97.7494, "supermarket"),
    StoreSite("Phoenix", "Arcadia", "Southwest", 33.5010, -111.9745, "supermarket"),
    StoreSite("Albuquerque", "Nob Hill", "Southwest", 35.0801, -106.6096, "express"),
    StoreSite("Los Angeles", "Westwood", "West", 34.0635, -118.4455, "supermarket"),
    StoreSite("Los Angeles", "Echo Park", "West", 34.0782, -118.2606, "express"),
    StoreSite("San Francisco", "Mission", "West", 37.7599, -122.4148, "express"),
    StoreSite("Seattle", "Capitol Hill", "West", 47.6253, -122.3222, "express"),
    StoreSite("Renton", "The Landing", "West", 47.4996, -122.2031, "hypermarket"),
    StoreSite("Portland", "Pearl District", "West", 45.5290, -122.6822, "supermarket"),
    StoreSite("Denver", "LoDo", "West", 39.7527, -104.9999, "express"),
)

# Floor area in square meters by format; the bands do not overlap.
FORMAT_SQUARE_METERS: dict[str, tuple[int, int]] = {
    "express": (400, 1_200),
    "supermarket": (1_500, 4_500),
    "hypermarket": (6_000, 12_000),
}
FIRST_OPENING = date(1998, 1, 1)
LAST_OPENING = date(2024, 12, 31)


def _cents(amount: str | float) -> int:
    return round(float(amount) * 100)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _shelf_price_cents(rng: random.Random, item: CatalogItem) -> int:
    """Draw a price in the item's range and round it to a shelf-style ending (.x9, .99, 9.99)."""
    low, high = _cents(item.min_price), _cents(item.max_price)
    raw = rng.uniform(low, high)
    if raw < 1_000:
        cents = int(raw // 10) * 10 + 9
    elif raw < 10_000:
        cents = int(raw // 100) * 100 + 99
    else:
        cents = int(raw // 1_000) * 1_000 + 999
    return min(max(cents, low), high)


def _unit_cost_cents(rng: random.Random, price_cents: int, ratio_band: tuple[float, float]) -> int:
    """Draw a unit cost as a share of the price, kept within the 45-80% margin band."""
    cents = round(price_cents * rng.uniform(*ratio_band))
    lowest = math.ceil(price_cents * MIN_COST_RATIO)
    highest = math.floor(price_cents * MAX_COST_RATIO)
    return min(max(cents, lowest), highest)


def product_rows() -> list[dict[str, str]]:
    """Build the product catalog: the planted products first, then every category's lines."""
    rng = random.Random(PRODUCT_SEED)
    ratio_bands = {category.name: category.cost_ratio for category in CATEGORIES}
    drafts: list[tuple[str, str, str, int]] = [
        (planted.name, planted.category, planted.brand, _cents(planted.base_price))
        for planted in PLANTED_PRODUCTS
    ]
    for category in CATEGORIES:
        for item in category.items:
            brand = rng.choice(category.brands)
            drafts.append((item.name, category.name, brand, _shelf_price_cents(rng, item)))

    skus = rng.sample(range(10_000_000, 100_000_000), len(drafts))
    rows = []
    for number, (draft, sku) in enumerate(zip(drafts, skus, strict=True), 1):
        name, category, brand, price = draft
        cost = _unit_cost_cents(rng, price, ratio_bands[category])
        rows.append(
            {
                "product_id": f"P{number:04d}",
                "sku": f"SKU-{sku:08d}",
                "name": name,
                "category": category,
                "brand": brand,
                "unit_cost": _money(cost),
                "base_price": _money(price),
            }
        )
    return rows


def store_rows() -> list[dict[str, str]]:
    """Build the store locations with drawn opening dates and format-consistent floor areas."""
    rng = random.Random(STORE_SEED)
    opening_span_days = (LAST_OPENING - FIRST_OPENING).days
    rows = []
    for number, site in enumerate(STORE_SITES, 1):
        low, high = FORMAT_SQUARE_METERS[site.format]
        opened_on = FIRST_OPENING + timedelta(days=rng.randint(0, opening_span_days))
        square_meters = rng.randint(low // 10, high // 10) * 10
        rows.append(
            {
                "store_id": f"S{number:03d}",
                "name": f"Retail {site.city} {site.neighbourhood}",
                "city": site.city,
                "region": site.region,
                "latitude": f"{site.latitude:.4f}",
                "longitude": f"{site.longitude:.4f}",
                "opened_on": opened_on.isoformat(),
                "square_meters": str(square_meters),
                "format": site.format,
            }
        )
    return rows


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    # newline="" plus lineterminator="\n" keeps the bytes identical on every platform.
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_dimensions(out_dir: Path) -> tuple[Path, Path]:
    """Write both dimension CSVs into ``out_dir`` and return (product catalog, store locations)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    products_path = out_dir / PRODUCT_CATALOG_FILE
    stores_path = out_dir / STORE_LOCATIONS_FILE
    _write_csv(products_path, PRODUCTS.column_names, product_rows())
    _write_csv(stores_path, STORES.column_names, store_rows())
    return products_path, stores_path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="directory to write the CSVs into (default: db/data)",
    )
    args = parser.parse_args(argv)
    for path in write_dimensions(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
