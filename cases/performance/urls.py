from django.urls import path

from cases.performance import strategy_views, views

app_name = "performance"
urlpatterns = [
    path("", views.performance_page, name="page"),
    path("roc.png", views.performance_roc, name="roc"),
    path("strategies/", strategy_views.strategies_page, name="strategies"),
    path("strategies/compute", strategy_views.strategies_request, name="strategies_request"),
    path("strategies/<int:pk>/strategies.csv", strategy_views.strategies_csv, name="strategies_csv"),
    path("strategies/<int:pk>/strategies.json", strategy_views.strategies_json, name="strategies_json"),
    path("strategies/<int:pk>/<slug:plot>.png", strategy_views.strategies_plot, name="strategies_plot"),
]
