"""Run the DICOM listener (C-ECHO / C-STORE SCP) until SIGTERM or Ctrl-C: `manage.py dicom_listener`.

Configuration comes from the DICOM_* settings (mammo_platform/settings_dicom.py); --port and --ae-title override
them for a one-off run. Received instances go through the platform's one ingestion service.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from cases.dicom.ingest import dicom_association_record, dicom_instance_ingest
from cases.dicom.listener import DicomListener
from cases.dicom.peers import PeerConfigError
from cases.dicom.received import ListenerConfig


class Command(BaseCommand):
    help = "Run the DICOM listener (C-ECHO and C-STORE SCP) for mammography units and PACS."

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
        listener = DicomListener(config=config, ingest=dicom_instance_ingest, audit=dicom_association_record)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            listener.start(block=False)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {config.bind_address}:{config.port}: {exc}") from exc
        self.stdout.write(f"DICOM listener {config.ae_title} on {config.bind_address}:{listener.port}", ending="\n")
        self.stdout.flush()
        stop.wait()
        listener.stop()
