"""The ``postpurchase`` command. Each command group lives in a module of this package.

Errors the user can fix print as one line on stderr (exit 2); anything else is a bug and
prints its traceback only with ``--debug`` (exit 1).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from postpurchase.exceptions import PostpurchaseError


class _Group(click.Group):
    """A click group that turns exceptions into one clear line unless --debug was given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except PostpurchaseError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(2)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(
                f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                err=True,
                fg="red",
            )
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="postpurchase")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Post-purchase automation: webhooks in, scheduled after-sales messages out."""
    ctx.obj = {"debug": debug}


def _register() -> None:
    # Imported here, not at the top, so that each group module can import ``main``'s helpers.
    from postpurchase.cli.campaigns import campaigns
    from postpurchase.cli.consent import consent
    from postpurchase.cli.customers import customers
    from postpurchase.cli.db import db
    from postpurchase.cli.loyalty import loyalty
    from postpurchase.cli.preview import preview
    from postpurchase.cli.products import products
    from postpurchase.cli.report import report
    from postpurchase.cli.reviews import reviews
    from postpurchase.cli.run import run
    from postpurchase.cli.serve import serve

    for group in (
        campaigns,
        consent,
        customers,
        db,
        loyalty,
        preview,
        products,
        report,
        reviews,
        run,
        serve,
    ):
        main.add_command(group)


_register()
