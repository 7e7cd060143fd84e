from django.core.management.base import BaseCommand, CommandError

from audit.verification import audit_chain_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain and report the first broken link (exit status 1 when broken)."

    def handle(self, *args, **options):
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(
                f"Audit trail broken at event {broken.event_id}: {broken.problem}. "
                f"{checked} event(s) before it are intact."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} event(s) checked."))
