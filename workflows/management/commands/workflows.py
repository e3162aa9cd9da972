"""manage.py workflows export|import: the JSON definition format on disk."""
import json
import sys

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError, ValidationError
from workflows.selectors import bundle_export, workflow_get
from workflows.services import bundle_import


class Command(BaseCommand):
    help = "Export workflows (one, or --all as a bundle with data types) or import a definition/bundle file."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        export = sub.add_parser("export", help="Write a workflow (or --all) as JSON.")
        export.add_argument("name", nargs="?")
        export.add_argument("--all", action="store_true", help="A bundle of every data type and workflow.")
        export.add_argument("--output", "-o", help="File to write (default: standard output).")
        imp = sub.add_parser("import", help="Load a workflow or bundle file; publishes unless --draft.")
        imp.add_argument("file", help="Path, or - for standard input.")
        imp.add_argument("--draft", action="store_true", help="Save as drafts without publishing.")

    def handle(self, *args, verb, **options):
        if verb == "export":
            self._export(options)
        else:
            self._import(options)

    def _export(self, options):
        if options["all"]:
            document = bundle_export()
        elif options["name"]:
            try:
                document = workflow_get(name=options["name"]).definition
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        else:
            raise CommandError("Name a workflow or pass --all.")
        text = json.dumps(document, indent=2) + "\n"
        if options["output"]:
            with open(options["output"], "w") as handle:
                handle.write(text)
        else:
            self.stdout.write(text, ending="")

    def _import(self, options):
        try:
            handle = sys.stdin if options["file"] == "-" else open(options["file"])
            with handle:
                document = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        try:
            imported = bundle_import(document=document, publish=not options["draft"])
        except ValidationError as exc:
            lines = [exc.message] + [f"  {path}: {message}" for path, message in exc.fields.items()]
            raise CommandError("\n".join(lines)) from exc
        state = "as drafts" if options["draft"] else "and published"
        for workflow in imported:
            self.stdout.write(f"Imported {workflow.name} {state}.")
