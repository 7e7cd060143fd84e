from django.contrib.auth.middleware import LoginRequiredMiddleware


class LoginRequiredExceptApiMiddleware(LoginRequiredMiddleware):
    """Every page requires a signed-in user unless marked @login_not_required.

    The API is left to Django REST framework, which authenticates tokens itself and answers 401/403 as JSON
    (its default permission is IsAuthenticated) instead of redirecting to the login page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
