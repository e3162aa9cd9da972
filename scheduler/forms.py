"""Forms of the scheduler pages: a recurring event, and the filter of the scheduled-runs list."""
from datetime import datetime

from django import forms

from scheduler import recurrence
from scheduler.models import MissedPolicy, OverlapPolicy, RecurringEvent, ScheduledRunStatus
from workflows.models import Workflow

FREQUENCY_KINDS = [
    ("seconds", "Every N seconds"),
    ("minutes", "Every N minutes"),
    ("hours", "Every N hours"),
    ("daily", "Daily"),
    ("weekly", "Weekly"),
    ("monthly", "Monthly"),
    ("quarterly", "Quarterly"),
    ("yearly", "Yearly"),
    ("cron", "Cron expression"),
]
# Where a service error about a field shows on this form.
SERVICE_FIELDS = {"frequency": "frequency_kind", "timezone": "timezone", "start": "start", "end": "end",
                  "missed": "missed", "overlap": "overlap", "workflow": "workflow"}


class WallTimeField(forms.CharField):
    """A date and time without an offset, read as a wall-clock time in the event's timezone."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise forms.ValidationError("Enter a date and time, e.g. 2025-03-30T02:30.") from None
        return parsed.replace(tzinfo=None)


class RecurringEventForm(forms.Form):
    """Create or edit a recurring event; start and end are wall-clock times in its timezone."""

    workflow = forms.ModelChoiceField(queryset=Workflow.objects.none(), to_field_name="name",
                                      help_text="Runs the version that is live at each fire.")
    name = forms.CharField(max_length=100, required=False, help_text="Optional label.")
    frequency_kind = forms.ChoiceField(label="Frequency", choices=FREQUENCY_KINDS, initial="daily")
    every = forms.IntegerField(min_value=1, required=False, help_text="For “every N …” frequencies.")
    cron = forms.CharField(required=False, max_length=200, help_text="Five fields, e.g. 30 2 * * 1-5.")
    timezone = forms.ChoiceField(choices=(), initial="UTC", help_text="An IANA timezone.")
    start = WallTimeField(required=False, help_text="First fire, in the timezone above (default: now). "
                                                      "Daily and longer frequencies repeat its time and day.")
    end = WallTimeField(required=False, help_text="Optional: no fires after this.")
    params = forms.JSONField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 4}),
                             help_text="Parameters as a JSON object.")
    missed = forms.ChoiceField(choices=MissedPolicy.choices, initial=MissedPolicy.CATCH_UP,
                               label="After downtime")
    overlap = forms.ChoiceField(choices=OverlapPolicy.choices, initial=OverlapPolicy.SKIP,
                                label="While the previous run is unfinished")

    def __init__(self, *args, event: RecurringEvent | None = None, **kwargs):
        if event is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_for(event)
        super().__init__(*args, **kwargs)
        workflows = Workflow.objects.filter(enabled=True, live_version__isnull=False)
        if event is not None:
            workflows = workflows | Workflow.objects.filter(id=event.workflow_id)
        self.fields["workflow"].queryset = workflows.order_by("name").distinct()
        self.fields["timezone"].choices = [(name, name) for name in recurrence.timezone_choices()]

    def add_error(self, field, error):
        super().add_error(field, error)
        # Pico marks a field red by aria-invalid; screen readers announce it too.
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-invalid"] = "true"

    def clean_params(self):
        params = self.cleaned_data.get("params")
        if params in (None, ""):
            return {}
        if not isinstance(params, dict):
            raise forms.ValidationError("Enter a JSON object, e.g. {\"report\": \"daily\"}.")
        return params

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("frequency_kind")
        if kind in recurrence.UNITS:
            if not cleaned.get("every"):
                self.add_error("every", "Say how many " + kind + ".")
            else:
                cleaned["frequency"] = {"every": cleaned["every"], "unit": kind}
        elif kind == "cron":
            if not cleaned.get("cron"):
                self.add_error("cron", "Enter a cron expression.")
            else:
                cleaned["frequency"] = {"cron": cleaned["cron"]}
        elif kind:
            cleaned["frequency"] = kind
        if "frequency" in cleaned:
            try:
                recurrence.parse_frequency(cleaned["frequency"])
            except recurrence.FrequencyError as exc:
                self.add_error("cron" if kind == "cron" else "every" if kind in recurrence.UNITS
                               else "frequency_kind", str(exc))
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "workflow": data["workflow"], "name": data["name"], "params": data["params"],
            "frequency": data["frequency"], "timezone_name": data["timezone"], "start": data["start"],
            "end": data["end"], "missed": data["missed"], "overlap": data["overlap"],
        }

    def add_service_errors(self, fields: dict, message: str) -> None:
        """Show a service's ValidationError on the fields it names (the rest above the form)."""
        shown = False
        for key, text in fields.items():
            name = SERVICE_FIELDS.get(key.split(".")[0])
            if key.startswith("params"):
                name = "params"
                text = f"{key.split('.', 1)[1]}: {text}" if "." in key else text
            if name == "frequency_kind" and self.cleaned_data.get("frequency_kind") == "cron":
                name = "cron"
            if name:
                self.add_error(name, text)
                shown = True
        if not shown:
            self.add_error(None, message)


def initial_for(event: RecurringEvent) -> dict:
    """The form's values for an existing event (times as wall-clock times in its timezone)."""
    frequency = event.frequency
    initial = {"workflow": event.workflow.name, "name": event.name, "timezone": event.timezone,
               "params": event.params, "missed": event.missed, "overlap": event.overlap,
               "start": event.anchor[:19]}
    if isinstance(frequency, dict) and "cron" in frequency:
        initial.update(frequency_kind="cron", cron=frequency["cron"])
    elif isinstance(frequency, dict):
        initial.update(frequency_kind=frequency["unit"], every=frequency["every"])
    else:
        initial["frequency_kind"] = frequency
    if event.end is not None:
        initial["end"] = recurrence.to_wall(event.end, recurrence.zone(event.timezone)).isoformat()[:19]
    return initial


class ScheduledFilterForm(forms.Form):
    """The scheduled-runs list's filter: a workflow and a status."""

    workflow = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[
        ("", "Waiting (pending and paused)"), *ScheduledRunStatus.choices, ("all", "All"),
    ])

    def __init__(self, *args, workflow_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [("", "All workflows"), *[(name, name) for name in workflow_names]]
