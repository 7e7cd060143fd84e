from django.urls import path

from cases.performance import api

# Included under /api/ with the "api" namespace by mammo_platform.urls.
urlpatterns = [
    path("performance/strategies/", api.StrategiesApi.as_view(), name="strategies"),
    path("performance/strategies/<int:pk>/", api.StrategyReportApi.as_view(), name="strategy_report"),
]
