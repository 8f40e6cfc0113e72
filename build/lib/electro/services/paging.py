"""Pages of a list: what every paginated view (shop categories, admin tables, events) shares."""

from __future__ import annotations


def page_number(raw: object) -> int:
    """The page asked for, from any text: a whole number of at least 1; junk means the first."""
    try:
        return max(1, int(str(raw)))
    except ValueError:  # not a number, or thousands of digits
        return 1


def clamp(page: int, total: int, per_page: int) -> tuple[int, int]:
    """(``page`` moved into 1..pages, pages); an empty list still has one page."""
    pages = max(1, -(-total // per_page))
    return min(max(page, 1), pages), pages
