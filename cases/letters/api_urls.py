from django.urls import path

from cases.letters import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("letters/", api.LetterListApi.as_view(), name="letter_list"),
    path("letters/print/", api.LetterPrintApi.as_view(), name="letter_print"),
    path("letters/<int:pk>/pdf/", api.LetterPdfApi.as_view(), name="letter_pdf"),
    path("studies/<int:pk>/result/confirm/", api.ResultConfirmApi.as_view(), name="result_confirm"),
]
