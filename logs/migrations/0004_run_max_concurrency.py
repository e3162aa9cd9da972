from django.db import migrations, models


def limits_of_waiting_runs(apps, schema_editor):
    """Runs queued before the upgrade take their definition's max_concurrency, so none skips the limit."""
    WorkflowRun = apps.get_model("logs", "WorkflowRun")
    waiting = WorkflowRun.objects.filter(status__in=["queued", "running"]).select_related("version")
    for run in waiting.iterator():
        definition = run.version.definition if run.version_id else (run.draft_definition or {})
        limit = definition.get("max_concurrency") or 0
        if limit:
            WorkflowRun.objects.filter(id=run.id).update(max_concurrency=limit)


class Migration(migrations.Migration):

    dependencies = [
        ("logs", "0003_logs_pages_aggregates_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowrun",
            name="max_concurrency",
            field=models.PositiveIntegerField(db_default=0),
        ),
        migrations.RunPython(limits_of_waiting_runs, migrations.RunPython.noop),
    ]
