"""The error summary of a refused form (templates/_error_summary.html): each error once, linked to its field."""

from __future__ import annotations

from django import forms, template

register = template.Library()


def _target(field) -> str:
    """The id a summary link points at: the field's input, the first of a radio group, none for a hidden field."""
    if field.is_hidden or not field.auto_id:
        return ""
    if field.field.widget.use_fieldset:  # radios and checkboxes: Django puts the ids on each choice
        return f"{field.auto_id}_0"
    return field.id_for_label or field.auto_id


@register.simple_tag
def error_items(*sources, message: str = "") -> list[tuple[str, str]]:
    """(href, text) for each error of the given forms (or lists of forms), in the order of their fields; a message
    that is no form's (a service's refusal) comes first, without a link."""
    items: list[tuple[str, str]] = [("", str(message))] if message else []
    pending = list(sources)
    while pending:
        source = pending.pop(0)
        if isinstance(source, list | tuple):
            pending[:0] = list(source)
            continue
        if not isinstance(source, forms.BaseForm) or not source.errors:
            continue
        items.extend(("", str(error)) for error in source.non_field_errors())
        for field in source:
            target = _target(field)
            items.extend((f"#{target}" if target else "", str(error)) for error in field.errors)
    return items
