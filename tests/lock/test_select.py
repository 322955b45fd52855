from __future__ import annotations

import pytest

from kvc.lock import Checksum, LockError, select_entry, version_key
from kvc.lock.select import newest, split_url


def entries(*names: str) -> dict[str, Checksum]:
    return {name: Checksum("sha256", f"{i:064x}") for i, name in enumerate(names)}


CENTOS = "https://cloud.centos.org/centos/9-stream/x86_64/images/"


def test_wildcard_picks_newest_dated_build_not_the_alias() -> None:
    listing = entries(
        "CentOS-Stream-GenericCloud-9-20240930.1.x86_64.qcow2",
        "CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2",
        "CentOS-Stream-GenericCloud-9-20241118.0.x86_64.qcow2",
        "CentOS-Stream-GenericCloud-9-20241007.0.x86_64.qcow2",
        "CentOS-Stream-GenericCloud-9-20241118.0.x86_64.qcow2.MD5SUM",
    )
    chosen = select_entry(CENTOS + "CentOS-Stream-GenericCloud-9-*.x86_64.qcow2", listing)
    assert chosen.name == "CentOS-Stream-GenericCloud-9-20241118.0.x86_64.qcow2"
    assert chosen.url == CENTOS + chosen.name
    assert chosen.checksum == listing[chosen.name]


def test_alias_is_used_only_when_nothing_else_matches() -> None:
    listing = entries("img-latest.qcow2", "other-20240101.qcow2")
    assert select_entry("https://h/img-*.qcow2", listing).name == "img-latest.qcow2"


def test_same_build_counter_is_compared_numerically() -> None:
    listing = entries("C-9-20241118.9.x.qcow2", "C-9-20241118.10.x.qcow2")
    assert select_entry("https://h/C-9-*.x.qcow2", listing).name == "C-9-20241118.10.x.qcow2"


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("9", "10"),
        ("9-20250101.0", "10-20241001.0"),
        ("1.4", "1.14"),
        ("41-1.4", "41-1.14"),
        ("9.5-20241120", "9.10-20240101"),
        ("1.0rc1", "1.0"),
        ("1.0beta2", "1.0rc1"),
        ("1.0", "1.0.1"),
        ("latest", "20240101"),
        ("9-latest", "9-20240101.0"),
        ("Build9.1", "Build16.27"),
    ],
)
def test_version_order(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)
    assert newest({"a": older, "b": newer}) == "b"


def test_separators_do_not_matter_and_ties_are_deterministic() -> None:
    assert version_key("9-1") == version_key("9.1")
    assert newest({"x-9.1": "9.1", "x-9-1": "9-1"}) == "x-9.1"


def test_exact_name_lookup() -> None:
    listing = entries("noble-server-cloudimg-amd64.img", "noble-server-cloudimg-arm64.img")
    chosen = select_entry("https://h/r/noble-server-cloudimg-arm64.img", listing)
    assert chosen.name == "noble-server-cloudimg-arm64.img"
    assert chosen.url == "https://h/r/noble-server-cloudimg-arm64.img"


def test_entries_listed_with_a_directory_match_on_file_name() -> None:
    listing = entries("images/a.qcow2")
    assert select_entry("https://h/x/a.qcow2", listing).name == "a.qcow2"


def test_percent_encoded_names_match_and_query_is_kept() -> None:
    listing = entries("img 1.qcow2", "img 2.qcow2")
    chosen = select_entry("https://h/img%20*.qcow2?mirror=1", listing)
    assert chosen.url == "https://h/img%202.qcow2?mirror=1"


def test_missing_entry_is_an_error() -> None:
    with pytest.raises(LockError, match=r"no entry for 'c\.img'"):
        select_entry("https://h/c.img", entries("a.img"))
    with pytest.raises(LockError, match=r"no entry matches 'x-\*\.img'"):
        select_entry("https://h/x-*.img", entries("a.img"))


def test_one_file_listed_twice_with_different_hashes_is_refused() -> None:
    """Two directories, one file name: which hash is right cannot be known."""
    listing = {"amd64/disk.img": Checksum("sha256", "a" * 64),
               "arm64/disk.img": Checksum("sha256", "b" * 64)}
    for url in ("https://h/amd64/disk.img", "https://h/*.img"):
        with pytest.raises(LockError, match=r"'disk\.img' appears twice .* different hashes"):
            select_entry(url, listing)


def test_one_file_listed_twice_with_the_same_hash_is_fine() -> None:
    same = Checksum("sha256", "a" * 64)
    listing = {"a/disk.img": same, "./disk.img": same}
    assert select_entry("https://h/disk.img", listing).checksum == listing["a/disk.img"]


def test_per_file_checksum_for_an_alias_names_the_real_build() -> None:
    listing = entries("Leap-15.6-Build16.27.qcow2")
    url = "https://h/Leap-15.6-Cloud.qcow2"
    chosen = select_entry(url, listing, checksum_url=url + ".sha256")
    assert chosen.url == url
    with pytest.raises(LockError):
        select_entry(url, listing, checksum_url="https://h/SHA256SUMS")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://h/a*b*.img", "at most one"),
        ("https://h/9-*/a.img", "only allowed in the file name"),
        ("https://h*/a.img", "only allowed in the file name"),
        ("https://h/a.img?v=*", "only allowed in the file name"),
        ("https://h/", "no file name"),
    ],
)
def test_bad_wildcards_are_errors(url: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        split_url(url)


# --- from the surviving mutants of kvc/lock/select.py (docs/mutation-report.md) --

def test_chosen_url_keeps_url_safe_characters_unescaped() -> None:
    name = "img-1.0+b~2:x@y,z.qcow2"
    chosen = select_entry("https://h/img-*.qcow2", entries(name))
    assert chosen.url == f"https://h/{name}"


@pytest.mark.parametrize("tail", ["?v=1?w=2", "#frag#more", "?v=1#frag"])
def test_query_and_fragment_are_not_part_of_the_name(tail: str) -> None:
    chosen = select_entry(f"https://h/a.img{tail}", entries("a.img"))
    assert (chosen.name, chosen.url) == ("a.img", f"https://h/a.img{tail}")


def test_a_directory_url_has_no_file_name() -> None:
    with pytest.raises(LockError, match="the URL has no file name"):
        split_url("https://h/dir/")


def test_a_file_name_of_any_letters_is_a_name() -> None:
    assert select_entry("https://h/X", entries("X")).url == "https://h/X"


def test_newest_of_nothing_is_an_error() -> None:
    with pytest.raises(LockError, match=r"^no candidates$"):
        newest({})


def test_a_word_after_the_version_is_newer_than_none() -> None:
    """'1a' > '1' however the suffix after the wildcard reads."""
    assert select_entry("https://h/v*.img", entries("v1.img", "v1a.img")).name == "v1a.img"


def test_the_wildcard_matches_nothing_too() -> None:
    assert select_entry("https://h/x*.img", entries("x.img")).name == "x.img"


def test_prefix_and_suffix_may_not_overlap() -> None:
    with pytest.raises(LockError, match="no entry matches"):
        select_entry("https://h/ab*ba", entries("aba"))


def test_a_percent_encoded_star_is_a_literal_star() -> None:
    """The build downloads such a url as written, so kvc lock must pin that very file."""
    listing = entries("a*b.qcow2", "a-9-b.qcow2")
    chosen = select_entry("https://h/a%2Ab.qcow2", listing)
    assert (chosen.name, chosen.url) == ("a*b.qcow2", "https://h/a%2Ab.qcow2")
    assert not split_url("https://h/a%2Ab.qcow2").has_wildcard


@pytest.mark.parametrize(("url", "name", "chosen_url"), [
    ("https://h/img-%2A-*.qcow2", "img-*-2.qcow2", "https://h/img-%2A-2.qcow2"),
    ("https://h/img-*-%2a.qcow2", "img-1-*.qcow2", "https://h/img-1-%2A.qcow2"),
])
def test_the_wildcard_is_the_star_written_as_one(url: str, name: str, chosen_url: str) -> None:
    chosen = select_entry(url, entries("img-*-2.qcow2", "img-1-*.qcow2"))
    assert (chosen.name, chosen.url) == (name, chosen_url)


@pytest.mark.parametrize("url", ["https://h/\t", "https://h//\n", "https://h/\r\t"])
def test_a_file_name_urllib_drops_is_no_file_name(url: str) -> None:
    """urlsplit removes tabs and line breaks (python/cpython@v3.11.7:Lib/urllib/parse.py:92,
    480): nothing is left to name a file."""
    with pytest.raises(LockError) as err:
        split_url(url)
    assert str(err.value) == f"{url}: the URL has no file name"
