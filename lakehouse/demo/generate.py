"""A small retail business to explore: customers, products, orders and order lines.

The data is deterministic (a fixed seed, dates counted back from a fixed anchor) so docs,
screenshots and tests agree, and it is slightly dirty in the ways silver is built to clean:
duplicated and whitespace-padded rows, blanks, mixed date formats, a few rows that break a
business rule. `ratatouille demo` (and `make run`, on first start) seeds bronze with it.
"""

import csv
import random
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from math import exp, log
from pathlib import Path
from typing import Generic, TypeVar

ANCHOR = date(2026, 10, 31)  # the demo's "today": every date counts back from it
START = date(2024, 11, 1)  # orders cover the 24 whole months up to ANCHOR
DATASETS = ("customers", "products", "orders", "order_lines")

# Rows at scale 1; order lines follow from the orders (about three per order).
_CUSTOMERS, _PRODUCTS, _ORDERS = 2_000, 150, 20_000

_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIRST = (
    "Emma", "Liam", "Olivia", "Noah", "Sofia", "Lucas", "Mia", "Elias", "Chloé", "Hugo", "Léa",
    "Jonas", "Hannah", "Finn", "Amelia", "Oliver", "Isla", "Jack", "Zoë", "Mateo", "Lucía",
    "Pablo", "Giulia", "Marco", "Sara", "Daan", "Fleur", "Ava", "Ethan", "Grace", "Henry",
    "Nora", "Leon", "Clara", "José", "Maya", "Owen", "Ines", "Felix", "Ruby",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Taylor", "Martin",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Lefèvre", "Moreau",
    "Rossi", "Russo", "Bianchi", "de Jong", "Jansen", "Visser", "Fernández", "López", "Martínez",
    "O'Brien", "Walsh", "Campbell", "Stewart", "Nguyen", "Kowalski", "Novak", "Andersen",
)  # fmt: skip
_TRADES = ("Interiors", "Catering", "Outfitters", "Studio", "Supplies", "Hospitality", "Retail")
_MAIL = ("example.com", "example.net", "example.org")
# country -> (share of customers, cities, company suffix)
_COUNTRIES: dict[str, tuple[int, tuple[str, ...], str]] = {
    "United States": (35, ("New York", "Chicago", "Austin", "Seattle", "Denver", "Boston"), "Inc."),
    "United Kingdom": (15, ("London", "Manchester", "Bristol", "Leeds", "Edinburgh"), "Ltd"),
    "Germany": (14, ("Berlin", "München", "Hamburg", "Köln", "Leipzig"), "GmbH"),
    "France": (10, ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes"), "SARL"),
    "Canada": (8, ("Toronto", "Montréal", "Vancouver", "Calgary"), "Inc."),
    "Spain": (7, ("Madrid", "Barcelona", "Valencia", "Sevilla"), "S.L."),
    "Netherlands": (6, ("Amsterdam", "Rotterdam", "Utrecht"), "B.V."),
    "Italy": (5, ("Milano", "Roma", "Torino", "Bologna"), "S.r.l."),
}

T = TypeVar("T")


class _Weighted(Generic[T]):
    """A weighted draw whose cumulative weights are summed once (`random.choices` sums them on
    every call, which was most of the generation time)."""

    def __init__(self, values: Sequence[T], weights: Iterable[float]) -> None:
        self.values = values
        self.cum = list(accumulate(weights))

    def pick(self, rng: random.Random) -> T:
        return self.values[
            bisect_right(self.cum, rng.random() * self.cum[-1], 0, len(self.cum) - 1)
        ]


_SEGMENTS = _Weighted(("consumer", "business", "enterprise"), (75, 20, 5))
_SEGMENT_APPETITE = {"consumer": 1.0, "business": 2.5, "enterprise": 5.0}
# segment -> (share of lines discounted, the discounts given: whole 5% steps, as staff give them)
_DISCOUNTS = {
    "consumer": (0.15, ("0.05", "0.10", "0.15", "0.20")),
    "business": (0.6, ("0.05", "0.10", "0.15")),
    "enterprise": (0.9, ("0.10", "0.15", "0.20", "0.25", "0.30")),
}
_STATUSES = _Weighted(("completed", "cancelled", "returned"), (90, 4, 6))
_LINES_PER_ORDER = _Weighted((1, 2, 3, 4, 5, 6), (22, 22, 20, 16, 12, 8))
_QUANTITIES = _Weighted(("1", "2", "3", "4", "5", "10"), (60, 22, 9, 4, 3, 2))
_ADJECTIVES = ("Classic", "Premium", "Compact", "Eco", "Deluxe", "Everyday", "Pro", "Nordic")
_VARIANTS = ("Large", "Small", "Blue", "Set of 4", "Oak", "2-Pack")


@dataclass(frozen=True)
class _Category:
    share: int
    cents: tuple[int, int]  # lowest and highest price, in cents
    season: tuple[float, ...]  # demand by month, Jan..Dec
    nouns: tuple[str, ...]


_CATEGORIES = {
    "Kitchen": _Category(
        20, (600, 12_000), (0.9, 0.8, 0.9, 0.9, 1, 0.9, 0.9, 0.9, 1, 1.1, 1.4, 1.6),
        ("Chef's Knife", "Cutting Board", "Saucepan", "Frying Pan", "Dutch Oven", "Kettle",
         "Espresso Cups", "Mixing Bowls", "Salad Spinner", "Spice Rack", "Tea Towels"),
    ),
    "Garden": _Category(
        15, (500, 25_000), (0.4, 0.6, 1.3, 1.9, 2.0, 1.7, 1.3, 1.0, 0.8, 0.6, 0.4, 0.4),
        ("Pruning Shears", "Watering Can", "Garden Hose", "Raised Bed", "Bird Feeder", "Trowel",
         "Planter", "Seed Tray", "Compost Bin", "Solar Lights", "Wheelbarrow"),
    ),
    "Toys": _Category(
        15, (400, 9_000), (0.6, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 2.0, 3.0),
        ("Building Blocks", "Jigsaw Puzzle", "Plush Bear", "Train Set", "Kite", "Board Game",
         "Doll House", "Marble Run", "Puppet Theatre", "Toy Car", "Science Kit"),
    ),
    "Books": _Category(
        20, (600, 4_500), (1.1, 0.9, 0.9, 0.9, 0.9, 1, 1.1, 1.1, 1, 1, 1.2, 1.6),
        ("Cookbook", "Field Guide", "Novel", "Atlas", "Sketchbook", "Poetry Collection",
         "Travel Guide", "Picture Book", "Biography", "Puzzle Book", "Almanac"),
    ),
    "Electronics": _Category(
        15, (900, 45_000), (0.8, 0.7, 0.8, 0.8, 0.8, 0.8, 0.9, 1, 1, 1, 2.2, 1.9),
        ("Headphones", "Bluetooth Speaker", "USB-C Charger", "Smart Plug", "E-Reader",
         "Webcam", "Keyboard", "Power Bank", "Desk Lamp", "Fitness Tracker", "Action Camera"),
    ),
    "Apparel": _Category(
        15, (800, 16_000), (0.9, 0.8, 1, 1, 1, 1, 0.9, 0.9, 1.1, 1.2, 1.4, 1.5),
        ("T-Shirt", "Hoodie", "Rain Jacket", "Wool Socks", "Beanie", "Scarf", "Sneakers",
         "Denim Jacket", "Apron", "Gloves", "Fleece Vest"),
    ),
}  # fmt: skip
# Order volume by month, Jan..Dec: quiet after the holidays, a November/December peak.
_SEASON = (0.75, 0.7, 0.85, 0.9, 0.95, 0.9, 0.85, 0.9, 0.95, 1.05, 1.5, 1.8)


@dataclass(frozen=True)
class _Customer:
    customer_id: int
    signup: date
    segment: str
    appetite: float  # relative number of orders


@dataclass(frozen=True)
class _Product:
    product_id: int
    category: str
    price: str
    old_price: str  # before the price rise a year before ANCHOR
    popularity: float


@dataclass(frozen=True)
class _Order:
    order_id: int
    day: date
    segment: str


def generate(out_dir: Path, *, seed: int = 7, scale: float = 1.0) -> list[Path]:
    """Write customers.csv, products.csv, orders.csv and order_lines.csv; the same bytes for the
    same seed and scale. At scale 1: 2,000 customers, 150 products, 20,000 orders, ~60,000 lines.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    rng = random.Random(seed)
    people, customers = _customers(rng, max(20, round(_CUSTOMERS * scale)))
    catalogue, products = _products(rng, max(12, round(_PRODUCTS * scale)))
    orders_meta, orders = _orders(rng, max(50, round(_ORDERS * scale)), people)
    lines = _order_lines(rng, orders_meta, catalogue)
    _dirty_customers(rng, customers)
    _dirty_products(rng, products)
    _dirty_orders(rng, orders, len(people))
    _dirty_order_lines(rng, lines, len(catalogue))
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "customers": (
            ("customer_id", "name", "email", "country", "city", "signup_date", "segment"),
            customers,
        ),
        "products": (("product_id", "name", "category", "unit_price"), products),
        "orders": (("order_id", "customer_id", "order_date", "status", "channel"), orders),
        "order_lines": (
            ("order_id", "line_no", "product_id", "quantity", "unit_price", "discount"),
            lines,
        ),
    }
    return [_write(out_dir / f"{name}.csv", *tables[name]) for name in DATASETS]


# -- clean data -----------------------------------------------------------------------------


def _customers(rng: random.Random, n: int) -> tuple[list[_Customer], list[list[str]]]:
    # Ids follow signup order, as a real sequence would; 60% signed up before the orders start.
    signups = sorted(ANCHOR - timedelta(days=rng.randrange(7, 5 * 365)) for _ in range(n))
    countries = _Weighted(list(_COUNTRIES), (c[0] for c in _COUNTRIES.values()))
    people, rows = [], []
    for customer_id, signup in enumerate(signups, start=1):
        segment = _SEGMENTS.pick(rng)
        country = countries.pick(rng)
        _, cities, suffix = _COUNTRIES[country]
        name, email = _identity(rng, segment, suffix)
        appetite = rng.lognormvariate(0, 0.9) * _SEGMENT_APPETITE[segment]
        people.append(_Customer(customer_id, signup, segment, appetite))
        signed = _date_text(rng, signup, odd_share=0.12)
        rows.append([str(customer_id), name, email, country, rng.choice(cities), signed, segment])
    return people, rows


def _identity(rng: random.Random, segment: str, suffix: str) -> tuple[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    handle = _ascii(f"{first}.{last}")
    if segment == "consumer":
        return f"{first} {last}", f"{handle}{rng.randrange(1, 100)}@{rng.choice(_MAIL)}"
    owner, trade = rng.choice(_LAST), rng.choice(_TRADES)
    return f"{owner} {trade} {suffix}", f"{handle}@{_ascii(f'{owner}-{trade}')}.example"


def _ascii(text: str) -> str:
    """An e-mail-safe handle: accents dropped (Müller → muller), only letters, digits, . and -."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9.-]", "", plain.lower())


def _products(rng: random.Random, n: int) -> tuple[list[_Product], list[list[str]]]:
    categories = _Weighted(list(_CATEGORIES), (c.share for c in _CATEGORIES.values()))
    catalogue, rows = [], []
    for product_id in range(1, n + 1):
        category = categories.pick(rng)
        spec = _CATEGORIES[category]
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(spec.nouns)}"
        if rng.random() < 0.2:  # a comma makes the CSV writer quote the field, as real ones do
            name += f", {rng.choice(_VARIANTS)}"
        # Log-uniform prices ending in .99/.49/.95/.00, like a shop's.
        whole = int(exp(rng.uniform(log(spec.cents[0]), log(spec.cents[1])))) // 100
        ending = rng.choice((99, 99, 99, 49, 95, 0))
        # A year ago prices were ~4% lower, with the same endings.
        price, old_price = _money(whole, ending), _money(whole * 96 // 100, ending)
        catalogue.append(_Product(product_id, category, price, old_price, rng.lognormvariate(0, 1)))
        rows.append([str(product_id), name, category, price])
    return catalogue, rows


def _order_days(rng: random.Random, n: int) -> list[date]:
    """Order dates, oldest first: seasonal, busier at weekends and in Black Friday week, and
    growing ~30% over the two years."""
    days = [START + timedelta(days=i) for i in range((ANCHOR - START).days + 1)]
    weights = [
        _SEASON[d.month - 1]
        * (1.15 if d.weekday() >= 5 else 1.0)
        * (1.6 if d.month == 11 and d.day >= 24 else 1.0)
        * (1 + 0.3 * i / len(days))
        for i, d in enumerate(days)
    ]
    return sorted(rng.choices(days, cum_weights=list(accumulate(weights)), k=n))


def _orders(
    rng: random.Random, n: int, people: list[_Customer]
) -> tuple[list[_Order], list[list[str]]]:
    signups = [c.signup for c in people]
    appetite = list(accumulate(c.appetite for c in people))
    meta, rows = [], []
    for i, day in enumerate(_order_days(rng, n)):
        # Only customers who had signed up by then, busy ones more often.
        known = max(bisect_right(signups, day), 1)
        c = people[bisect_left(appetite, rng.random() * appetite[known - 1], 0, known - 1)]
        growth = i / n  # the app takes share from the store over the two years
        r = rng.random() * 100
        channel = "web" if r < 55 else "store" if r < 85 - 10 * growth else "app"
        order_id = 100_001 + i
        meta.append(_Order(order_id, day, c.segment))
        rows.append(
            [
                str(order_id),
                str(c.customer_id),
                _date_text(rng, day, odd_share=0.08),
                _STATUSES.pick(rng),
                channel,
            ]
        )
    return meta, rows


def _order_lines(
    rng: random.Random, orders: list[_Order], catalogue: list[_Product]
) -> list[list[str]]:
    # Popularity times the category's season: toys sell in December, garden in May.
    by_month = [
        _Weighted(catalogue, (p.popularity * _CATEGORIES[p.category].season[m] for p in catalogue))
        for m in range(12)
    ]
    price_rise = ANCHOR - timedelta(days=365)
    rows = []
    for o in orders:
        products = by_month[o.day.month - 1]
        picked = [products.pick(rng) for _ in range(_LINES_PER_ORDER.pick(rng))]
        # A product appears once per order; dict keeps the draw's order (a set would not).
        unique = list({p.product_id: p for p in picked}.values())
        for line_no, p in enumerate(unique, start=1):
            rows.append(
                [
                    str(o.order_id),
                    str(line_no),
                    str(p.product_id),
                    _QUANTITIES.pick(rng),
                    p.old_price if o.day < price_rise else p.price,
                    _discount(rng, o.segment),
                ]
            )
    return rows


def _discount(rng: random.Random, segment: str) -> str:
    share, steps = _DISCOUNTS[segment]
    r = rng.random()
    if r >= share:
        return "0.00"
    return steps[int(r / share * len(steps))]  # below `share`, r is uniform: it picks the step


def _money(whole: int, cents: int) -> str:
    return f"{whole}.{cents:02d}"


def _date_text(rng: random.Random, day: date, odd_share: float) -> str:
    """Mostly ISO; otherwise MM/DD/YYYY or DD Mon YYYY, as older systems wrote them. Only
    these three formats: silver parses exactly these."""
    r = rng.random()
    if r >= odd_share:
        return day.isoformat()
    if r < odd_share * 0.6:
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    return f"{day.day:02d} {_MONTH_ABBR[day.month - 1]} {day.year}"


# -- dirt -----------------------------------------------------------------------------------


def _dirty_customers(rng: random.Random, rows: list[list[str]]) -> None:
    _blank(rng, rows, column=4, share=0.03)  # city
    _blank(rng, rows, column=6, share=0.03)  # segment
    _duplicate(rng, rows, count=max(1, len(rows) // 400))
    _duplicate(rng, rows, count=max(1, len(rows) // 600), pad=1)  # name


def _dirty_products(rng: random.Random, rows: list[list[str]]) -> None:
    # Hand-typed categories: silver's trim fixes some; the casing is left for a model to fix.
    for row in rng.sample(rows, max(2, len(rows) // 25)):
        c = row[2]
        row[2] = rng.choice((f" {c.lower()} ", c.upper(), c.lower(), f"{c} "))


def _dirty_orders(rng: random.Random, rows: list[list[str]], customers: int) -> None:
    # Orders from customers the CRM export does not have (yet): ids past the last one.
    for i, row in enumerate(rng.sample(rows, 2), start=1):
        row[1] = str(customers + i)
    _blank(rng, rows, column=4, share=0.02)  # channel
    _duplicate(rng, rows, count=max(1, len(rows) // 100))
    _duplicate(rng, rows, count=max(1, len(rows) // 400), pad=3)  # status


def _dirty_order_lines(rng: random.Random, rows: list[list[str]], products: int) -> None:
    bad = rng.sample(rows, 4)
    for row in bad[:2]:  # a return keyed in as a sale with a minus sign
        row[3] = str(-int(row[3]))
    for i, row in enumerate(bad[2:], start=1):  # sold before it reached the product export
        row[2] = str(products + i)
    _blank(rng, rows, column=5, share=0.005, values=("",))  # discount
    _duplicate(rng, rows, count=max(1, len(rows) // 100))


def _blank(
    rng: random.Random,
    rows: list[list[str]],
    column: int,
    share: float,
    values: Sequence[str] = ("", "  ", "", " "),
) -> None:
    """Empty or whitespace-only values in a column, in turn from `values`."""
    for i, row in enumerate(rng.sample(rows, max(len(values), round(len(rows) * share)))):
        row[column] = values[i % len(values)]


def _duplicate(
    rng: random.Random, rows: list[list[str]], count: int, pad: int | None = None
) -> None:
    """Copies of random rows at random later places, as a re-sent export page leaves them;
    with `pad`, that column of the copy gains surrounding whitespace."""
    for _ in range(count):
        src = rng.randrange(len(rows))
        row = list(rows[src])
        if pad is not None:
            row[pad] = rng.choice((" {}", "{} ", "  {}  ")).format(row[pad])
        rows.insert(rng.randrange(src + 1, len(rows) + 1), row)


def _write(path: Path, header: Sequence[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
