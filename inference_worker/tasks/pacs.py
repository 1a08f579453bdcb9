"""PACS round trip (default queue, CPU only): import a series over WADO-RS, send a SEG over STOW-RS.

Both take a row id, re-read the row and claim it with a conditional update, so a redelivered task
after a worker crash does nothing twice."""

from annotation_app.lib import tasks as contract


@contract.contract_task(contract.PACS_IMPORT, acks_late=True)
def import_series(import_id: int) -> str:
    """Run PacsImport `import_id`: "succeeded", "failed" or "skipped" (gone or already claimed)."""
    from annotation_app.pacs.services import run_import

    return run_import(int(import_id))


@contract.contract_task(contract.PACS_SEND, acks_late=True)
def send_seg(send_id: int) -> str:
    """Run SegSend `send_id`: "sent", "failed" or "skipped"."""
    from annotation_app.pacs.services import run_send

    return run_send(int(send_id))
