from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kvc.lock import Checksum, LockError, parse_checksums

DATA = Path(__file__).parent / "data"


def sha256(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def test_gnu_binary_marker_names_as_ubuntu_writes_them() -> None:
    entries = parse_checksums(fixture("ubuntu-SHA256SUMS"))
    name = "noble-server-cloudimg-amd64.img"
    assert entries[name] == Checksum("sha256", sha256(name))
    assert all(not n.startswith("*") for n in entries)


def test_gnu_two_space_sha512_as_debian_writes_them() -> None:
    entries = parse_checksums(fixture("debian-SHA512SUMS"))
    name = "debian-12-generic-arm64.qcow2"
    assert entries[name] == Checksum("sha512", hashlib.sha512(name.encode()).hexdigest())
    assert len(entries) == 5


def test_bsd_with_byte_count_comments_as_fedora_writes_them() -> None:
    entries = parse_checksums(fixture("Fedora-Cloud-41-1.4-x86_64-CHECKSUM"))
    assert set(entries) == {
        "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
        "Fedora-Cloud-Base-41-1.4.x86_64.raw.xz",
        "Fedora-Cloud-Base-UKI-41-1.4.x86_64.qcow2",
    }


def test_bsd_with_blank_lines_and_alias_as_centos_writes_them() -> None:
    entries = parse_checksums(fixture("centos-stream-9-x86_64-CHECKSUM"))
    assert "CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2" in entries
    assert len(entries) == 4


def test_pgp_clear_signed_file_skips_armour_and_signature() -> None:
    entries = parse_checksums(fixture("almalinux-9-CHECKSUM"))
    assert len(entries) == 3
    assert all(name.startswith("AlmaLinux-9-GenericCloud-") for name in entries)


def test_pgp_dash_escaped_lines_are_unescaped() -> None:
    digest = sha256("x")
    text = f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n- {digest}  -x.img\n"
    assert parse_checksums(text)["-x.img"].hex == digest


def test_per_file_sha256_with_name_as_opensuse_writes_it() -> None:
    entries = parse_checksums(fixture("openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256"))
    assert list(entries) == ["openSUSE-Leap-15.6-Minimal-VM.x86_64-15.6.0-Cloud-Build16.27.qcow2"]


def test_bare_hash_names_the_file_being_checked() -> None:
    entries = parse_checksums(fixture("bare.qcow2.sha256"), default_name="bare.qcow2")
    assert entries == {"bare.qcow2": Checksum("sha256", sha256("bare.qcow2"))}


def test_bare_hash_without_a_name_is_an_error() -> None:
    with pytest.raises(LockError, match="bare hash"):
        parse_checksums(sha256("a"))


def test_result_is_immutable_and_hex_lower_case() -> None:
    entries = parse_checksums(f"{sha256('a').upper()}  a.img\r\n")
    assert entries["a.img"].hex == sha256("a")
    with pytest.raises(TypeError):
        entries["b"] = entries["a.img"]  # type: ignore[index]


def test_leading_dot_slash_is_dropped() -> None:
    assert "a.img" in parse_checksums(f"{sha256('a')}  ./a.img\n")


def test_stronger_digest_wins_for_the_same_file() -> None:
    sha512 = hashlib.sha512(b"a").hexdigest()
    text = f"SHA256 (a.img) = {sha256('a')}\nSHA512 (a.img) = {sha512}\n"
    assert parse_checksums(text)["a.img"] == Checksum("sha512", sha512)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no checksum entries"),
        ("# only a comment\n\n", "no checksum entries"),
        ("<html><body>Not here</body></html>\n", "line 1: not a checksum line"),
        (f"{'a' * 63}  a.img\n", "63 hex digits"),
        (f"{'a' * 40}  a.img\n", "expected 64 \\(sha256\\) or 128"),
        (f"SHA256 (a.img) = {'a' * 128}\n", "sha256 hash must be 64 hex digits"),
        (f"MD5 (a.img) = {'a' * 32}\n", "unsupported checksum algorithm 'MD5'"),
        (f"SHA256 (a.img) = {'z' * 64}\n", "hex digits"),
        (f"{'a' * 64}  a.img\n{'b' * 64}  a.img\n", "line 2: 'a.img' is listed twice"),
    ],
)
def test_malformed_content_is_a_clean_error(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        parse_checksums(text)


def test_spec_pin_round_trips() -> None:
    pin = f"sha256:{sha256('a')}"
    assert str(Checksum.parse(pin)) == pin
    with pytest.raises(LockError):
        Checksum.parse("sha1:abc")


# --- from the surviving mutants of kvc/lock/parsers.py (docs/mutation-report.md) --

def test_a_weaker_digest_after_a_stronger_one_is_ignored() -> None:
    sha512 = hashlib.sha512(b"a").hexdigest()
    text = f"SHA512 (a.img) = {sha512}\nSHA256 (a.img) = {sha256('a')}\n"
    assert parse_checksums(text)["a.img"] == Checksum("sha512", sha512)


def test_gnu_escaped_names_are_unescaped_and_others_kept_literally() -> None:
    """coreutils marks a line whose name has '\\' or a newline with a leading '\\'."""
    a, b = sha256("a"), sha256("b")
    text = f"\\{a}  we\\\\ird\\nname.img\n{b}  plain\\name.img\n"
    assert dict(parse_checksums(text)) == {"we\\ird\nname.img": Checksum("sha256", a),
                                           "plain\\name.img": Checksum("sha256", b)}


def test_pgp_armour_with_several_headers_is_skipped() -> None:
    text = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\nComment: two headers\n\n"
            f"{sha256('a')}  a.img\n-----BEGIN PGP SIGNATURE-----\nabc\n"
            "-----END PGP SIGNATURE-----\n")
    assert list(parse_checksums(text)) == ["a.img"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# nothing\n", "no checksum entries found"),
        (f"{sha256('a')}\n", "line 1: a bare hash without a file name"),
        (f"{sha256('a')}  ./\n", "line 1: empty file name"),
    ],
)
def test_messages_are_exact(text: str, message: str) -> None:
    with pytest.raises(LockError) as err:
        parse_checksums(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("given", "shown"), [("z" * 60, "z" * 60), ("z" * 61, "z" * 59 + "…"),
                                              ("z" * 100, "z" * 59 + "…")])
def test_long_values_are_clipped_in_messages(given: str, shown: str) -> None:
    with pytest.raises(LockError) as err:
        Checksum.guess(given)
    assert str(err.value) == f"not a hex hash: {shown!r}"


def test_a_line_after_the_signature_is_read_not_skipped() -> None:
    """Nothing the parser does not understand is skipped (module docstring): text after
    the signature block is read like any other line, so junk there is an error."""
    signed = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
              f"{sha256('a')}  a.img\n-----BEGIN PGP SIGNATURE-----\nabc\n"
              "-----END PGP SIGNATURE-----\n")
    with pytest.raises(LockError) as err:
        parse_checksums(signed + "<html>mirror error page</html>\n")
    assert str(err.value) == "line 8: not a checksum line: '<html>mirror error page</html>'"
