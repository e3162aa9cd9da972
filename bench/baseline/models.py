"""The one table the baseline writes: a row per task, as Engine Room writes a run row."""
from django.db import models


class Hit(models.Model):
    """One accepted call, inserted by the worker task."""

    email = models.CharField(max_length=254)
    amount = models.FloatField()
    vip = models.BooleanField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.email} {self.amount}"
