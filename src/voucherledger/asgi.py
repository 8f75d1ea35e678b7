"""The ASGI application for uvicorn: ``uvicorn voucherledger.asgi:app`` (also what
``voucherledger serve`` runs).

Once the app is built, the process's garbage collector is tuned (:func:`tune_gc`): a
request allocates thousands of short-lived objects, and at CPython's default threshold
(700) the youngest generation was collected several times per claim, each pass also
walking what start-up made. Measured in one sitting (docs/performance.md): p99 of
claims 195 to 240 ms before, 143 to 152 ms after, and 8 % less server CPU per claim.
"""

import gc

from voucherledger.app import create_app
from voucherledger.ops.supervision import watch_supervisor_from_env

# Allocations (less deallocations) between two collections of the youngest generation,
# and collections of each generation between two of the next (CPython: 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Move everything made so far (modules, the app, its routes) to the collector's
    permanent generation, never scanned again, and collect less often. Cyclic garbage
    is still collected, later: a request's cycles wait for at most 20,000 allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


app = create_app()
tune_gc()
watch_supervisor_from_env()  # a worker of `serve --workers N` exits with its supervisor
