"""The shared list helper (docs/compat/keystore.md §1.1)."""

from __future__ import annotations

from pykes.keystore import list_page
from pykes.keystore.listing import DEFAULT_PAGE_SIZE, byte_order_key


def _names(count: int, prefix: str = "key-") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]


def test_sorts_in_byte_order() -> None:
    names = ["b", "a", "B", "é", "_", "0", "\udcff", "\uffff"]
    page, cont = list_page(names, "", -1)
    assert page == sorted(names, key=byte_order_key)
    assert page[:6] == ["0", "B", "_", "a", "b", "é"]
    # an undecodable file name byte (0xFF) sorts after every valid UTF-8 sequence
    assert page[-2:] == ["\uffff", "\udcff"]
    assert cont == ""


def test_accepts_any_iterable_and_does_not_mutate() -> None:
    names = ["c", "a", "b"]
    assert list_page(iter(names), "", 0) == (["a", "b", "c"], "")
    assert names == ["c", "a", "b"]


def test_empty() -> None:
    assert list_page([], "", -1) == ([], "")
    assert list_page([], "x", 5) == ([], "")


def test_default_page_size_is_1024() -> None:
    names = _names(3000)
    for n in (0, -1, -100):
        page, cont = list_page(reversed(names), "", n)
        assert len(page) == DEFAULT_PAGE_SIZE == 1024
        assert page == names[:1024]
        assert cont == names[1024]


def test_exactly_one_page_has_no_continuation() -> None:
    names = _names(1024)
    assert list_page(names, "", -1) == (names, "")
    assert list_page(names, "key-", -1) == (names, "")


def test_explicit_page_size() -> None:
    names = _names(10)
    assert list_page(names, "", 3) == (names[:3], names[3])
    assert list_page(names, "", 10) == (names, "")
    assert list_page(names, "", 11) == (names, "")
    assert list_page(names, "", 9) == (names[:9], names[9])


def test_prefix_selects_contiguous_range_and_stops() -> None:
    names = ["a", "my-1", "my-2", "my-3", "myx", "n", "my"]
    assert list_page(names, "my-", -1) == (["my-1", "my-2", "my-3"], "")
    assert list_page(names, "my", -1) == (["my", "my-1", "my-2", "my-3", "myx"], "")
    assert list_page(names, "my-", 2) == (["my-1", "my-2"], "my-3")
    assert list_page(names, "zzz", -1) == ([], "")
    assert list_page(names, "0", -1) == ([], "")


def test_prefix_continuation_is_next_matching_name() -> None:
    names = _names(2000, "a-") + _names(5, "b-") + _names(5, "0-")
    page, cont = list_page(names, "a-", -1)
    assert page == _names(1024, "a-")
    assert cont == "a-01024"
    page, cont = list_page(names, "b-", 2)
    assert page == ["b-00000", "b-00001"]
    assert cont == "b-00002"


def test_go_quirk_not_reproduced() -> None:
    # Go returns all 1025 names when exactly page-size+1 names match at the tail of
    # the list; pykes keeps the page size (documented in list_page).
    names = ["a"] + _names(1025)
    page, cont = list_page(names, "key-", -1)
    assert len(page) == 1024
    assert cont == "key-01024"
    page, cont = list_page(_names(4), "key-", 3)
    assert page == _names(3)
    assert cont == "key-00003"


def test_paging_through_everything_with_explicit_n() -> None:
    names = _names(25)
    seen: list[str] = []
    remaining = names
    while True:
        page, cont = list_page(remaining, "", 7)
        seen += page
        if not cont:
            break
        remaining = [x for x in names if byte_order_key(x) >= byte_order_key(cont)]
        assert remaining[0] == cont
    assert seen == names
