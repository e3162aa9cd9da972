"""The baseline's tasks: a no-op, one row inserted, a round trip that wakes the caller, and a timestamp."""
import time
from functools import cache

import redis
from celery import shared_task
from django.conf import settings

from .models import Hit


@cache
def redis_client():
    """One client per process, as Engine Room's sync waits keep one."""
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def noop() -> None:
    """Nothing: what Celery alone costs per task."""


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def insert_one(email: str, amount: float, vip: bool) -> None:
    """One row inserted: the least a task that records anything does."""
    Hit.objects.create(email=email, amount=amount, vip=vip)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def round_trip(channel: str, email: str, amount: float, vip: bool) -> None:
    """One row inserted, then the waiting web thread woken over pub/sub (Engine Room's sync mechanism)."""
    Hit.objects.create(email=email, amount=amount, vip=vip)
    redis_client().publish(channel, "done")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def stamp(key: str) -> None:
    """The time this task ran, under `key`: the first and last message of a drain measure it."""
    redis_client().set(key, repr(time.time()))
