"""A ``serve --workers N`` worker exits when the process that started it dies.

uvicorn's workers are child processes of a supervisor. Killed with ``SIGKILL`` (or
crashed), the supervisor cannot stop them: they were left running as orphans,
holding the listening socket. ``voucherledger serve`` names itself in
:data:`SUPERVISOR_ENV` before it starts workers; each worker then polls its parent
process id and, once it is no longer the supervisor's, asks itself to shut down
(``SIGTERM``, uvicorn's graceful stop) and, if that has not finished after a grace
period, exits at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import structlog

SUPERVISOR_ENV = "VOUCHERLEDGER_SUPERVISOR_PID"

log = structlog.get_logger("voucherledger.supervision")


def watch_supervisor(
    supervisor_pid: int, *, interval: float = 1.0, grace: float = 5.0
) -> threading.Thread:
    """Start a daemon thread that ends this process once its parent is no longer
    ``supervisor_pid``."""

    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(interval)
        log.warning("supervisor_gone", supervisor_pid=supervisor_pid, worker_pid=os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=watch, name="watch-supervisor", daemon=True)
    thread.start()
    return thread


def watch_supervisor_from_env() -> threading.Thread | None:
    """In a worker started by ``voucherledger serve --workers N``, watch the
    supervisor; elsewhere (one process, tests, a stray variable) do nothing."""
    value = os.environ.get(SUPERVISOR_ENV, "")
    parent = multiprocessing.parent_process()  # set in a process multiprocessing spawned
    if not value.isdigit() or parent is None or parent.pid != int(value):
        return None
    # Even if the supervisor died while this worker was starting: the thread sees a
    # parent id that is no longer the supervisor's and ends the worker.
    return watch_supervisor(int(value))
