"""A health task: proves a worker is alive, which queue it serves and what device it would use."""
import os
import socket

from annotation_app.lib import tasks as contract


@contract.contract_task(contract.PING)
def ping(payload: str = "ping") -> dict:
    """Echo the payload with the worker's host and process id (JSON-serialisable)."""
    return {"echo": payload, "host": socket.gethostname(), "pid": os.getpid()}
