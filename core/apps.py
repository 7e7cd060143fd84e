from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor every app stands on: worker processes and their heartbeat, and the transactional outbox
    through which every asynchronous step of the platform is asked for."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import outbox_tracking  # noqa: F401  (Celery task signals keep each outbox message's state)
