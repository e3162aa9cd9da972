"""manage.py create_token NAME [--workflow W ...]: make an API token and print it, once."""
from django.core.management.base import BaseCommand, CommandError

from api_endpoints.services import token_create
from config.errors import ValidationError


class Command(BaseCommand):
    help = (
        "Make an API token. Without --workflow it is an app-wide admin token; with it, the token may only "
        "call those workflows and read their runs. The token is printed once and never stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the token is for, e.g. 'stripe' or 'zapier'.")
        parser.add_argument("--workflow", "-w", action="append", default=[], metavar="NAME",
                            help="A workflow the token may call; repeat for several.")

    def handle(self, *args, name, workflow, **options):
        try:
            made = token_create(name=name, workflows=workflow)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message) from exc
        scope = "admin (every workflow and the management API)" if made.token.admin else ", ".join(workflow)
        # The token alone on stdout, so that `TOKEN=$(manage.py create_token x)` works; the rest on stderr.
        self.stderr.write(f"Token {made.token.name!r} for {scope}. Keep it now; it cannot be shown again.")
        self.stdout.write(made.value)
