"""The collector's schedule for a serving process (app/collector.py), in a fresh interpreter of its own:
what survives a full collection, or is promoted to the oldest generation, is frozen; a frozen object
still goes when nothing refers to it; and reference cycles among frozen objects are freed once the
process's memory has doubled."""

import subprocess
import sys
import textwrap

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.database_independent


def run(code: str) -> list[str]:
    script = "import gc, sys, weakref\nfrom app import collector\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_survivors_of_a_full_collection_are_frozen_and_still_freed_when_nothing_refers_to_them():
    before, held, released = run(
        """
        collector.hold_long_lived()
        before = gc.get_freeze_count()
        sockets = [{"socket": [i, str(i)]} for i in range(50_000)]
        gc.collect()
        held = gc.get_freeze_count()
        del sockets
        print(before, held, held - gc.get_freeze_count())
        """
    )
    assert int(held) - int(before) >= 100_000  # each dict and its list
    assert int(released) >= 100_000


def test_what_a_collection_of_the_middle_generation_promotes_is_frozen_so_full_collections_stay_small():
    before, promoted, walked = run(
        """
        collector.hold_long_lived()
        before = gc.get_freeze_count()
        sockets = [{"socket": [i, str(i)]} for i in range(50_000)]
        gc.collect(1)
        promoted = gc.get_freeze_count()
        print(before, promoted, len(gc.get_objects(2)))
        """
    )
    assert int(promoted) - int(before) >= 100_000 and int(walked) < 1_000


def test_cycles_among_frozen_objects_are_freed_once_the_memory_has_doubled():
    after_freezing, after_doubling = run(
        """
        class Node:
            pass

        collector.hold_long_lived()
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect()  # a and b survive it: frozen
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        print(gone() is None)
        held = [[i] for i in range(sys.getallocatedblocks())]  # a list, its items and an int each
        gc.collect()  # finds the memory doubled: the next walks everything
        gc.collect()
        print(gone() is None)
        """
    )
    assert (after_freezing, after_doubling) == ("False", "True")


def test_objects_passing_through_many_times_the_heap_set_off_no_walk_of_everything():
    frozen, oldest = run(
        """
        collector.hold_long_lived()
        before = gc.get_freeze_count()
        for _ in range(200):
            # A handshake's objects: promoted, frozen, then freed.
            passing = [[i] for i in range(before // 20)]
            gc.collect(1)
            del passing
        gc.collect(1)
        print(gc.get_freeze_count() >= before, len(gc.get_objects(2)))
        """
    )
    assert frozen == "True" and int(oldest) < 1_000
