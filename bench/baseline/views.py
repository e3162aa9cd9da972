"""The baseline endpoints: validate the same three typed parameters as Engine Room's workflow, then enqueue."""
import uuid

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .tasks import noop, redis_client, round_trip


class HookInput(serializers.Serializer):
    """The body of the benchmark's webhook: three typed parameters."""

    email = serializers.EmailField()
    amount = serializers.FloatField()
    vip = serializers.BooleanField()


class HookApi(APIView):
    """Validate and enqueue a no-op task: 202."""

    def post(self, request):
        body = HookInput(data=request.data)
        body.is_valid(raise_exception=True)
        noop.delay()
        return Response({"status": "queued"}, status=202)


class SyncApi(APIView):
    """Validate, enqueue a task that inserts a row, and wait for it over pub/sub: a raw Celery round trip."""

    def post(self, request):
        body = HookInput(data=request.data)
        body.is_valid(raise_exception=True)
        channel = f"bench-baseline:{uuid.uuid4()}"
        subscription = redis_client().pubsub(ignore_subscribe_messages=True)
        subscription.subscribe(channel)
        try:
            round_trip.delay(channel, **body.validated_data)
            message = None
            for _ in range(100):
                message = subscription.get_message(timeout=0.1)
                if message is not None:
                    break
        finally:
            subscription.close()
        return Response({"done": message is not None}, status=200 if message is not None else 504)
