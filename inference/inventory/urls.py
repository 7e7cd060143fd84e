from django.urls import path

from inference.inventory import views

app_name = "models"
urlpatterns = [
    path("", views.model_inventory_page, name="inventory"),
    path("import/", views.model_import_page, name="import"),
    path("inventory.csv", views.model_inventory_export, {"fmt": "csv"}, name="export_csv"),
    path("inventory.json", views.model_inventory_export, {"fmt": "json"}, name="export_json"),
    path("<int:pk>/", views.model_detail_page, name="detail"),
    path("<int:pk>/status/", views.model_status_change_page, name="status_change"),
]
