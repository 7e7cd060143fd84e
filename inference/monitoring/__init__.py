"""Monitoring of the active and shadow malignancy models (issue 21 item 4) and the stop rules that suspend a model
(item 5). docs/model-monitoring.md and docs/adr/0010-model-monitoring-and-stop-rules.md explain the choices."""
