"""Dask worker preload for sweeps on a LocalCluster (`preload=["cosim.dse.dask_preload"]`):
Ctrl-C belongs to the driver, which cancels the tasks and closes the cluster. Workers
spawned while the driver ignored SIGINT inherit the ignore already; a worker the nanny
restarts later does not, and gets it here."""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:
    from cosim.pool_children import _bare_names_told_by_driver
    _bare_names_told_by_driver()  # the driver told the user of a shadowed bare name, once
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
