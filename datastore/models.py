"""Data types with typed fields, and records that hold their values as JSON."""
import uuid

from django.db import models


class DataType(models.Model):
    """A kind of thing the app stores ("lead", "subscription"), with its typed fields."""

    name = models.SlugField(max_length=63, unique=True)
    # [{"name", "type", "list", "required", "description"}] — the same shape as workflow parameters.
    fields = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def field_map(self) -> dict[str, dict]:
        return {field["name"]: field for field in self.fields}


class Record(models.Model):
    """One thing of a data type; its field values live in `data`, stored canonically."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    data_type = models.ForeignKey(DataType, on_delete=models.CASCADE, related_name="records")
    data = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["data_type", "-created"], name="record_type_created")]

    def __str__(self):
        return f"{self.data_type_id}:{self.id}"
