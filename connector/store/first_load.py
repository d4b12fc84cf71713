"""A connection's first load: which records this pull may already have stored, in fixed memory.

The known-hash look-up that tells a re-read record from a changed one finds
nothing while a connection is loaded for the first time, yet cost one
``IN``-list query per 900 ids of every page group (~17 s per million activity
rows). When a stream's table holds nothing of the connection as its pull
starts, the pull keeps a :class:`FirstLoad`: a Bloom filter of the ids it has
stored so far. A record whose id the filter has never seen cannot be in the
store because of this pull, so it is not looked up; only the few ids the
filter may have seen (read twice in one pull, e.g. edited while the pull ran,
or a false positive) are looked up as before. A Bloom filter has no false
negatives, so the result is the same as looking up everything.

Memory is fixed (:data:`BITS` bits, 8 MiB) whatever the number of records; past
a few million ids more of them are looked up for nothing (about 7 % at ten
million), never fewer than needed. A crash mid-first-load leaves rows behind:
the re-run's pull finds them and looks everything up.

This is the contacts' way. A first load of activities (ten times as many rows)
is not looked up at all: it is staged and settled in key order at the pull's
end, which sorts out what was read twice (:mod:`connector.store.staging`).
"""

from __future__ import annotations

from collections.abc import Iterable

BITS = 1 << 26
"""64 Mi bits (8 MiB): about 0.1 % of ids looked up for nothing at a million ids, 7 % at ten million."""


class FirstLoad:
    """The ids one first-load pull of a stream has stored: ``may_have`` is never wrong when it says no."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits: int = BITS) -> None:
        if bits < 8 or bits & (bits - 1):
            raise ValueError("bits must be a power of two, at least 8")
        self._bits = bytearray()  # made on first use: a first load of activities is staged and never asks
        self._mask = bits - 1

    def _slots(self, crm_id: str) -> tuple[int, int]:
        # two probes from one 64-bit hash (str hashes are stable within a process, which is all a pull needs)
        code = hash(crm_id) & 0xFFFF_FFFF_FFFF_FFFF
        return code & self._mask, ((code >> 32) | 1) * 0x9E37_79B1 & self._mask

    def _made(self) -> bytearray:
        if not self._bits:
            self._bits = bytearray((self._mask + 1) // 8)
        return self._bits

    def add(self, crm_ids: Iterable[str]) -> None:
        bits = self._made()
        for crm_id in crm_ids:
            one, two = self._slots(crm_id)
            bits[one >> 3] |= 1 << (one & 7)
            bits[two >> 3] |= 1 << (two & 7)

    def may_have(self, crm_ids: Iterable[str]) -> list[str]:
        """The ids of ``crm_ids`` this pull may have stored already (all of those it has, a few it has not)."""
        bits = self._made()
        found = []
        for crm_id in crm_ids:
            one, two = self._slots(crm_id)
            if bits[one >> 3] >> (one & 7) & 1 and bits[two >> 3] >> (two & 7) & 1:
                found.append(crm_id)
        return found
