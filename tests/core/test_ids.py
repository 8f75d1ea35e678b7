"""Ids sort by creation time, even when made in the same millisecond."""

from __future__ import annotations

import re

import pytest

from voucherledger.core import ids as ids_module
from voucherledger.core.ids import PREFIXES, new_id

ID = re.compile(r"^[a-z]{3}_[0-9A-HJKMNP-TV-Z]{26}$")


def test_a_burst_of_ids_sorts_in_the_order_they_were_made() -> None:
    ids = [new_id("acc") for _ in range(5000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_of_different_kinds_interleave_by_time() -> None:
    made = [new_id(prefix) for prefix in sorted(PREFIXES) for _ in range(50)]
    suffixes = [i.split("_", 1)[1] for i in made]
    assert suffixes == sorted(suffixes)


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_ids_are_prefixed_crockford(prefix: str) -> None:
    made = new_id(prefix)
    assert made.startswith(f"{prefix}_")
    assert ID.match(made)


def test_an_unknown_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("usr")


def test_a_forked_child_does_not_repeat_its_parents_random_bytes() -> None:
    """Ids take random bytes from a pool: a child forked with the parent's pool must
    draw fresh ones, or parent and child would make the same ids in one millisecond."""
    import os

    new_id("acc")  # the pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.write(write, ids_module._random(80).to_bytes(10, "big"))
        os._exit(0)
    os.close(write)
    child = os.read(read, 10)
    os.close(read)
    os.waitpid(pid, 0)
    with ids_module._lock:
        parent = ids_module._random(80).to_bytes(10, "big")
    assert child != parent
