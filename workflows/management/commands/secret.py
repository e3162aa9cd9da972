"""manage.py secret set NAME: store a secret read from standard input, encrypted at rest."""
import sys

from django.core.management.base import BaseCommand, CommandError

from config.errors import ValidationError
from workflows.models import Secret
from workflows.services import secret_delete, secret_set


class Command(BaseCommand):
    help = "Set (value read from standard input), list or delete secrets. Values are never printed."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        set_parser = sub.add_parser("set", help="Read the value from standard input.")
        set_parser.add_argument("name")
        set_parser.add_argument("--description", default="")
        sub.add_parser("list", help="Names only.")
        delete = sub.add_parser("delete")
        delete.add_argument("name")

    def handle(self, *args, verb, **options):
        if verb == "set":
            # Read from stdin so that the value never shows in shell history or the process list.
            value = (options.get("stdin") or sys.stdin).read().rstrip("\r\n")
            try:
                secret_set(name=options["name"], value=value, description=options["description"])
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {v}" for k, v in exc.fields.items())) from exc
            self.stdout.write(f"Secret {options['name']} saved.")
        elif verb == "list":
            for secret in Secret.objects.order_by("name"):
                self.stdout.write(secret.name)
        else:
            secret = Secret.objects.filter(name=options["name"]).first()
            if secret is None:
                raise CommandError(f"No secret named {options['name']!r}.")
            secret_delete(secret=secret)
            self.stdout.write(f"Secret {options['name']} deleted.")
