"""``portico passwd [USER]``: an argon2 hash of a password, for a route's ``basic_auth``."""

from __future__ import annotations

import sys

import click

from portico.cli.console import err, out


@click.command()
@click.argument("user", required=False)
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")
def passwd(user: str | None, from_stdin: bool) -> None:
    """Print an argon2 hash of a password (asked twice, not echoed).

    With USER, print the line to put under a route's basic_auth users.
    """
    from portico.policy.basic_auth import make_hash

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    if not password:
        err.print("[bold red]error[/] an empty password is not allowed")
        sys.exit(2)
    hashed = make_hash(password)
    if user:
        if ":" in user:
            err.print("[bold red]error[/] a user name cannot contain ':'")
            sys.exit(2)
        out.print(f'{user} = "{hashed}"', markup=False)
        err.print(f"put it under the route's table: basic_auth = {{ users = {{ {user} = "
                  "\"...\" } }", markup=False)
    else:
        out.print(hashed, markup=False)
