from datetime import date

from django.core.management.base import BaseCommand

from inference.monitoring.compute import monitoring_run


class Command(BaseCommand):
    help = (
        "Compute the monitoring of the active and shadow malignancy models now (what the daily Celery beat task "
        "does): the last --days days up to --end (default yesterday), then the stop rules on --end. Safe to run "
        "again: a day's row is replaced, a rule trips once per model and day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--end", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--days", type=int, default=None, help="Days to compute (MODEL_MONITORING_DAYS).")
        parser.add_argument("--model", type=int, action="append", dest="model_ids", help="A model's id (repeat).")
        parser.add_argument("--no-stop-rules", action="store_true", help="Compute without evaluating stop rules.")

    def handle(self, *args, end, days, model_ids, no_stop_rules, **options):
        summary = monitoring_run(
            model_ids=model_ids, end=end, days=days, evaluate=not no_stop_rules, via="manage.py model_monitoring"
        )
        for name, result in summary["models"].items():
            trips = f", stop rule trips {result['trips']}" if result["trips"] else ""
            self.stdout.write(f"{name}: {result['rows']} day(s) up to {summary['end']}{trips}")
        if not summary["models"]:
            self.stdout.write("No active or shadow malignancy model to monitor.")
