"""The run list's filter form: what people type, turned into RunFilters for the selectors."""
from datetime import timedelta

from django import forms
from django.utils import timezone

from .models import RunStatus, RunTrigger
from .selectors import RunFilters

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class RunFilterForm(forms.Form):
    """Filters of the run list, the export and the live refresh; every field is optional."""

    workflow = forms.ChoiceField(required=False, label="Workflow")
    status = forms.ChoiceField(required=False, label="Status", choices=[("", "Any status"), *RunStatus.choices])
    trigger = forms.ChoiceField(required=False, label="Trigger", choices=[("", "Any trigger"), *RunTrigger.choices])
    version = forms.RegexField(
        required=False, label="Version", regex=r"^(draft|\d{1,9})$", max_length=9,
        error_messages={"invalid": "A version number, or “draft”."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. 3 or draft", "inputmode": "text", "size": 8}),
    )
    period = forms.ChoiceField(
        required=False, label="Period",
        choices=[("", "Any time"), ("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"),
                 ("30d", "Last 30 days")],
    )
    since = forms.DateTimeField(required=False, label="From (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="To (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    q = forms.CharField(required=False, label="Search parameters, errors and callers", max_length=200,
                        widget=forms.SearchInput(attrs={"placeholder": "text, or a run id"}))
    parent = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, workflow_names: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [("", "Any workflow"), *((name, name) for name in workflow_names)]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "“To” is before “From”.")
        return data

    def filters(self) -> RunFilters:
        """The valid part of what was typed (an invalid field is reported and left out, not fatal)."""
        if not self.is_bound:
            return RunFilters()
        self.is_valid()
        data = self.cleaned_data
        since = data.get("since")
        if data.get("period"):
            since = max(filter(None, [since, timezone.now() - PERIODS[data["period"]]]))
        return RunFilters(
            workflow=data.get("workflow") or None,
            status=data.get("status") or None,
            trigger=data.get("trigger") or None,
            version=data.get("version") or None,
            since=since,
            until=data.get("until"),
            q=(data.get("q") or "").strip(),
            parent=data.get("parent"),
        )
