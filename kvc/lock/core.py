"""Orchestrate ``kvc lock``: fetch, parse, select, compare, rewrite, report.

The core takes already-resolved targets (the spec loader expands templates)
so it does not depend on the spec models, and the fetcher is passed in so
tests and dry runs control the network. A target that fails produces no pin:
the spec keeps whatever pin it had, because a stale pin is safe and a wrong
or missing one is not.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvc.lock.errors import LockError
from kvc.lock.fetch import Fetcher
from kvc.lock.parsers import Checksum, parse_checksums
from kvc.lock.rewrite import Pin, rewrite
from kvc.lock.select import select_entry, split_url


@dataclass(frozen=True)
class LockTarget:
    """One image build to lock, with its URLs already expanded."""

    flavor: str
    release_version: str
    arch: str
    url: str
    checksum_url: str
    current_checksum: str | None = None
    current_locked_url: str | None = None
    # Why kvc lock must not pin this build (its pin would not take effect), if so.
    unlockable: str | None = None

    @property
    def name(self) -> str:
        return f"{self.flavor}/{self.release_version}/{self.arch}"


class Status(enum.Enum):
    PINNED = "pinned"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"  # `--from FILE` and no given file lists the target


@dataclass(frozen=True)
class Outcome:
    """What happened to one target; ``checksum``/``locked_url`` are the new values."""

    target: LockTarget
    status: Status
    checksum: str | None = None
    locked_url: str | None = None
    reason: str = ""

    def pin(self) -> Pin | None:
        if self.status is not Status.PINNED or self.checksum is None:
            return None
        t = self.target
        return Pin(t.flavor, t.release_version, t.arch, self.checksum, self.locked_url)

    def render(self, dry_run: bool) -> str:
        t = self.target
        if self.status is Status.FAILED:
            kept = f"kept {t.current_checksum}" if t.current_checksum else "no pin yet"
            return f"failed    {t.name}: {self.reason} ({kept})"
        if self.status is Status.SKIPPED:
            kept = f"kept {t.current_checksum}" if t.current_checksum else "no pin yet"
            return f"skipped   {t.name}: {self.reason} ({kept})"
        if self.status is Status.UNCHANGED:
            return f"unchanged {t.name} {self.checksum}"
        verb = "would pin" if dry_run else "pinned   "
        line = f"{verb} {t.name} {t.current_checksum or '(none)'} -> {self.checksum}"
        if self.locked_url and self.locked_url != t.current_locked_url:
            line += f"\n          {t.name} file: {self.locked_url}"
        return line


@dataclass(frozen=True)
class LockReport:
    """Every target's outcome, printable for normal and ``--dry-run`` runs."""

    outcomes: tuple[Outcome, ...]
    dry_run: bool = False

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def exit_code(self) -> int:
        """Non-zero when any target failed, even though the others were written."""
        return 1 if self.count(Status.FAILED) else 0

    def lines(self) -> list[str]:
        body = [o.render(self.dry_run) for o in self.outcomes]
        changed = "would change" if self.dry_run else "pinned"
        summary = (
            f"{self.count(Status.PINNED)} {changed}, {self.count(Status.UNCHANGED)} unchanged, "
            f"{self.count(Status.FAILED)} failed"
        )
        if self.count(Status.SKIPPED):
            summary += f", {self.count(Status.SKIPPED)} skipped"
        return [*body, summary]

    def render(self) -> str:
        return "\n".join(self.lines()) + "\n"


def lock_text(
    text: str, targets: Sequence[LockTarget], fetcher: Fetcher, *, dry_run: bool = False,
    resolve_one: Callable[[LockTarget], Outcome] | None = None,
) -> tuple[str, LockReport]:
    """Resolve every target and return the new spec text and the report.

    With ``dry_run`` the text is returned unchanged and the report says what
    would change. ``resolve_one`` replaces the download (``--from FILE``).
    Raises LockError only when the spec text itself is unusable.
    """
    one = resolve_one or (lambda target: resolve(target, fetcher))
    outcomes = [Outcome(t, Status.FAILED, reason=t.unlockable) if t.unlockable else one(t)
                for t in targets]
    result = rewrite(text, [pin for o in outcomes if (pin := o.pin()) is not None])
    refused = {(r.pin.flavor, r.pin.release_version, r.pin.arch): r.reason for r in result.rejected}
    final = tuple(_refuse(o, refused) for o in outcomes)
    return (text if dry_run else result.text), LockReport(final, dry_run)


def resolve(target: LockTarget, fetcher: Fetcher) -> Outcome:
    """Work out one target's pin; every expected failure becomes a FAILED outcome."""
    try:
        pattern = split_url(target.url)
        body = fetcher.get_text(target.checksum_url)
        entries = _parse(target.checksum_url, body, pattern.name)
        chosen = select_entry(target.url, entries, checksum_url=target.checksum_url)
    except LockError as err:
        return Outcome(target, Status.FAILED, reason=str(err))
    locked_url = chosen.url if pattern.has_wildcard else None
    return _compare(target, chosen.checksum, locked_url)


def _parse(checksum_url: str, body: str, file_name: str) -> dict[str, Checksum]:
    try:
        return dict(parse_checksums(body, default_name=file_name))
    except LockError as err:
        raise LockError(f"{checksum_url}: {err}") from None


def _compare(target: LockTarget, checksum: Checksum, locked_url: str | None) -> Outcome:
    same_sum = _same_checksum(target.current_checksum, checksum)
    same_url = locked_url is None or locked_url == target.current_locked_url
    status = Status.UNCHANGED if same_sum and same_url else Status.PINNED
    return Outcome(target, status, str(checksum), locked_url)


def _same_checksum(current: str | None, new: Checksum) -> bool:
    if current is None:
        return False
    try:
        return Checksum.parse(current) == new
    except LockError:
        return False


def _refuse(outcome: Outcome, refused: dict[tuple[str, str, str], str]) -> Outcome:
    t = outcome.target
    reason = refused.get((t.flavor, t.release_version, t.arch))
    if reason is None:
        return outcome
    return Outcome(t, Status.FAILED, reason=f"cannot write the pin: {reason}")
