"""When the garbage collector walks what: a serving process holds thousands of sockets for hours, and a
full collection walks every object they hold (about 180 tracked objects an idle widget socket). CPython
runs one whenever the survivors have grown by a quarter since the last, so while sockets keep opening
the walks get longer: at 10,000 sockets, a pause of about a second in every delivery.

So what a full collection finds alive is frozen: later ones walk only what is newer. A frozen object
still goes as soon as nothing refers to it; what freezing gives up is finding reference cycles among
frozen objects. A closed socket leaves none there (flask-sock's one cycle per socket is made after its
handler ends, so it is young and collected as usual), but other code may: once the frozen objects
have doubled since the last walk of everything, the next full collection walks everything again and
frees such cycles. That is one long walk per doubling of the heap instead of one per quarter, and none
while the number of sockets holds steady."""

import gc

OLDEST = 2  # CPython's generations are 0, 1 and 2
_frozen_after_walking_all = 0
_walk_all_next = False


def hold_long_lived() -> None:
    """Freeze what start-up made, and the survivors of every full collection from now on."""
    global _frozen_after_walking_all
    gc.freeze()
    _frozen_after_walking_all = gc.get_freeze_count()
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)


def _after_collection(phase: str, info: dict) -> None:
    global _frozen_after_walking_all, _walk_all_next
    if phase != "stop" or info["generation"] != OLDEST:
        return
    walked_all = _walk_all_next
    gc.freeze()
    frozen = gc.get_freeze_count()
    if walked_all:
        _frozen_after_walking_all, _walk_all_next = frozen, False
    elif frozen > 2 * _frozen_after_walking_all:
        # The next full collection, when CPython's own schedule comes to it, walks everything.
        gc.unfreeze()
        _walk_all_next = True
