"""When the garbage collector walks what: a serving process holds thousands of sockets for hours, and a
full collection walks every object they hold (about 180 tracked objects an idle widget socket). CPython
runs one whenever the survivors have grown by a quarter since the last, so while sockets keep opening
the walks get longer: at 10,000 sockets, each holds up every delivery for about a second.

So what a full collection finds alive is frozen: later ones walk only what is newer. A frozen object
still goes as soon as nothing refers to it; what freezing gives up is finding reference cycles among
frozen objects. A closed socket leaves none there (flask-sock's one cycle per socket is made after its
handler ends, so it is young and collected as usual), but other code may: once the frozen objects
have doubled since the last walk of everything, the next full collection walks everything again and
frees such cycles. That is one long walk per doubling of the heap instead of one per quarter; while the
number of sockets holds steady, customers coming and going, the walks are of the newcomers only."""

import gc

OLDEST = 2  # CPython's generations are 0, 1 and 2
_frozen_after_walking_all = 0
# An upper bound of the objects frozen now: the count when last counted, plus what was frozen since (some
# of which has gone). Counting is a walk of every frozen object (12 ms at 1.6 million), so it is done
# only when this bound says the frozen objects may have doubled.
_frozen_at_most = 0
_walk_all_next = False


def hold_long_lived() -> None:
    """Freeze what start-up made, and the survivors of every full collection from now on."""
    global _frozen_after_walking_all, _frozen_at_most
    gc.freeze()
    _frozen_after_walking_all = _frozen_at_most = gc.get_freeze_count()
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)


def _after_collection(phase: str, info: dict) -> None:
    global _frozen_after_walking_all, _frozen_at_most, _walk_all_next
    if phase != "stop" or info["generation"] != OLDEST:
        return
    if _walk_all_next:
        gc.freeze()
        _frozen_after_walking_all = _frozen_at_most = gc.get_freeze_count()
        _walk_all_next = False
        return
    _frozen_at_most += len(gc.get_objects(OLDEST))
    gc.freeze()
    if _frozen_at_most > 2 * _frozen_after_walking_all:
        _frozen_at_most = gc.get_freeze_count()
        if _frozen_at_most > 2 * _frozen_after_walking_all:
            # The next full collection, when CPython's own schedule comes to it, walks everything.
            gc.unfreeze()
            _walk_all_next = True
