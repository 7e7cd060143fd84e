from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cases.dicom import receivers as dicom_receivers  # noqa: F401  (DICOM results after an analysis)
        from cases.screening import receivers as screening_receivers  # noqa: F401  (appointments follow images)
        from cases.studies import receivers  # noqa: F401  (a study follows its images' analyses)
