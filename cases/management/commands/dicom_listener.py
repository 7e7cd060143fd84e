"""Run the DICOM listener (C-ECHO, C-STORE, Modality Worklist C-FIND and MPPS SCP) until SIGTERM or Ctrl-C:
`manage.py dicom_listener`.

Configuration comes from the DICOM_* settings (mammo_platform/settings_dicom.py); --port and --ae-title override
them for a one-off run. Received instances go through the platform's one ingestion service.
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError

from cases.dicom.ingest import dicom_association_record, dicom_instance_ingest
from cases.dicom.listener import DicomListener
from cases.dicom.mpps import MppsService
from cases.dicom.peers import PeerConfigError
from cases.dicom.received import ListenerConfig
from cases.screening.mpps import mpps_create, mpps_update
from cases.screening.worklist import worklist_entries

STOP_POLL_SECONDS = 0.2


class Command(BaseCommand):
    help = "Run the DICOM listener (C-ECHO, C-STORE, worklist C-FIND, MPPS SCP) for mammography units and PACS."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, help="Port to listen on (default: DICOM_PORT).")
        parser.add_argument("--bind", help="Address to listen on (default: DICOM_BIND_ADDRESS).")

    def handle(self, *args, **options):
        try:
            config = ListenerConfig.from_settings()
        except PeerConfigError as exc:
            raise CommandError(str(exc)) from exc
        overrides = {"port": options["port"], "bind_address": options["bind"]}
        config = ListenerConfig(**{**config.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
        listener = DicomListener(
            config=config,
            ingest=dicom_instance_ingest,
            audit=dicom_association_record,
            worklist=worklist_entries,
            mpps=MppsService(create=mpps_create, update=mpps_update),
        )
        # The main thread polls a flag the handlers set. It used to block in threading.Event.wait() until a handler
        # set the Event: started as run.sh's background job, the listener then often never saw Ctrl-C's SIGINT nor
        # run.sh's SIGTERM (a signal the kernel hands to another thread only flags it; Python runs the handler when
        # the main thread next runs Python code, and a main thread blocked on a lock never does) and kept its port.
        signals: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, _frame: signals.append(signum))
        try:
            listener.start(block=False)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {config.bind_address}:{config.port}: {exc}") from exc
        self.stdout.write(f"DICOM listener {config.ae_title} on {config.bind_address}:{listener.port}", ending="\n")
        self.stdout.flush()
        while not signals:
            time.sleep(STOP_POLL_SECONDS)
        listener.stop()
