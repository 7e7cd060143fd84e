"""C-ECHO a DICOM node: `manage.py dicom_echo HOST PORT --called-aet AET [--calling-aet AET]`. Exit status 0 when
it answered with success; used as the listener container's health check and to test a destination."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from pynetdicom import AE
from pynetdicom.sop_class import Verification


class Command(BaseCommand):
    help = "Send a C-ECHO (DICOM verification) to a node and report whether it answered."

    def add_arguments(self, parser):
        parser.add_argument("host")
        parser.add_argument("port", type=int)
        parser.add_argument("--called-aet", required=True)
        parser.add_argument("--calling-aet", default="ECHOSCU")
        parser.add_argument("--timeout", type=float, default=10)

    def handle(self, *args, **options):
        ae = AE(ae_title=options["calling_aet"])
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = options["timeout"]
        ae.add_requested_context(Verification)
        assoc = ae.associate(options["host"], options["port"], ae_title=options["called_aet"])
        if not assoc.is_established:
            raise CommandError(f"No association with {options['called_aet']}@{options['host']}:{options['port']}")
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or status.Status != 0x0000:
            raise CommandError(f"C-ECHO failed: {status}")
        self.stdout.write(f"C-ECHO {options['called_aet']}@{options['host']}:{options['port']}: success")
