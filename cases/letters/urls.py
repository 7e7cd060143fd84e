from django.urls import path

from cases.letters import pages

app_name = "letters"
urlpatterns = [
    path("", pages.letter_list, name="list"),
    path("print/", pages.letters_print, name="print"),
    path("<int:pk>/letter.pdf", pages.letter_download, name="download"),
    path("studies/<int:pk>/confirm/", pages.result_confirm, name="confirm"),
    path("studies/<int:pk>/remake/", pages.letter_remake, name="remake"),
    path("templates/", pages.template_list, name="templates"),
    path("templates/<str:result>/", pages.template_edit, name="template_edit"),
]
