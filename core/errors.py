class ApplicationError(Exception):
    """A domain error with a message for the user; turned into a 400 response in one place
    (core.api_errors.exception_handler for the API, form errors on pages)."""

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
