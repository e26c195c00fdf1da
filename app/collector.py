"""When the garbage collector walks what: a serving process holds thousands of sockets for hours, and a
full collection walks every object they hold (about 180 tracked objects an idle widget socket). CPython
runs one whenever the survivors have grown by a quarter since the last, so while sockets keep opening
the walks get longer: at 10,000 sockets, each holds up every delivery for about a second.

So what survives into the oldest generation is frozen: after each collection of the middle
generation, what it promoted, and after each full collection, what it found alive. The full
collections then walk only what is newer, which is little: with customers coming and going among
2,000 idle sockets, walks of the newcomers of 120–190 ms every ten seconds or so were most of the
delivery's p99 until the promoted objects were frozen too. A frozen object still goes as soon as
nothing refers to it; what freezing gives up is finding reference cycles among frozen objects. A
closed socket leaves none there (flask-sock's one cycle per socket is made after its handler ends, so
it is young and collected as usual), but other code may: once the process's memory has doubled since
the last walk of everything, the next full collection walks everything again and frees such cycles.
That is one long walk per doubling of the heap; while the number of sockets holds steady, customers
coming and going, there is none.

Memory is measured as the interpreter's allocated blocks, which it keeps a tally of per pool: 0.2 ms at
3.6 million blocks. Counting the frozen objects instead walks each of them (20 ms at 1.2 million on a
quiet machine, 60–110 ms on average in a reconnect herd), and that counting was 6 % of a herd's CPU."""

import gc
import sys

OLDEST = 2  # CPython's generations are 0, 1 and 2
_blocks_after_walking_all = 0
_walk_all_next = False


def hold_long_lived() -> None:
    """Freeze what start-up made, and from now on what survives into the oldest generation."""
    global _blocks_after_walking_all
    gc.freeze()
    _blocks_after_walking_all = sys.getallocatedblocks()
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)


def _after_collection(phase: str, info: dict) -> None:
    global _blocks_after_walking_all, _walk_all_next
    if phase != "stop" or info["generation"] == 0:
        return
    if _walk_all_next:
        # Until the full collection that walks everything has run, nothing is frozen.
        if info["generation"] == OLDEST:
            gc.freeze()
            _blocks_after_walking_all = sys.getallocatedblocks()
            _walk_all_next = False
        return
    # After a collection of the middle generation the oldest holds just what it promoted (the young
    # generations are empty then): freezing it there keeps the oldest, and so CPython's full
    # collections, small.
    gc.freeze()
    if sys.getallocatedblocks() > 2 * _blocks_after_walking_all:
        # The next full collection, when CPython's own schedule comes to it, walks everything.
        gc.unfreeze()
        _walk_all_next = True
