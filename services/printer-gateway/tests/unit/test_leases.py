"""Rendezvous ownership: stable, spread, and moving only a departed replica's share."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from printer_gateway.adapters.leases import RendezvousOwners, rendezvous_owner

PRINTERS = [f"printer-{i}" for i in range(300)]


def test_printers_spread_over_replicas() -> None:
    counts = Counter(rendezvous_owner(p, ["a", "b", "c"]) for p in PRINTERS)
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > 60


@given(st.sets(st.text("abcdef", min_size=1, max_size=4), min_size=2, max_size=6))
def test_removing_a_replica_moves_only_its_printers(replicas: set[str]) -> None:
    ordered = sorted(replicas)
    gone = ordered[0]
    before = {p: rendezvous_owner(p, ordered) for p in PRINTERS[:60]}
    after = {p: rendezvous_owner(p, ordered[1:]) for p in PRINTERS[:60]}
    assert all(after[p] == before[p] for p in before if before[p] != gone)


@given(
    st.lists(
        st.tuples(
            st.sets(st.text("abcdef", min_size=1, max_size=3), min_size=1, max_size=5),
            st.sets(st.sampled_from(PRINTERS[:40]), max_size=40),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_remembered_owners_are_the_rendezvous_owners(passes: list[tuple[set[str], set[str]]]) -> None:
    """Replicas dying, coming back and new ones joining, printers added and deleted between passes."""
    remembered = RendezvousOwners()
    for replicas, printers in passes:
        owners = remembered.owners(printers, sorted(replicas))
        assert owners == {p: rendezvous_owner(p, sorted(replicas)) for p in printers}
