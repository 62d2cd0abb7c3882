"""CLI commands of the API face: `serve` and `keys create|list|revoke`."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from chainsleuth.core.console import console, data_dir, print_json

keys_app = typer.Typer(name="keys", help="API keys for `chainsleuth serve`.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    scope: str = typer.Option(..., "--scope", help="read | investigate | admin"),
    name: str = typer.Option(None, "--name", help="Who or what the key is for."),
) -> None:
    """Create a key; it is printed once, alone on the last line (only its hash is stored)."""
    from chainsleuth.api.security import create_key, keys_path

    data = data_dir(ctx)
    key, record = create_key(data, scope, name)
    console.print(
        Text(
            f"key {record['id']} (scope {record['scope']}) stored as a sha256 hash in "
            f"{keys_path(data)}; copy it now, it is not shown again:"
        ),
        soft_wrap=True,
    )
    typer.echo(key)


@keys_app.command("list")
def keys_list(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """The keys (id, name, scope, created, revoked); never the keys themselves."""
    from chainsleuth.api.security import list_keys

    rows = list_keys(data_dir(ctx))
    if json_out:
        print_json(rows)
        return
    table = Table("id", "name", "scope", "created", "revoked")
    for r in rows:
        table.add_row(r["id"], r["name"], r["scope"], r["created"], r["revoked"] or "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str = typer.Argument(...)) -> None:
    """Revoke a key by id (a running server refuses it at once)."""
    from chainsleuth.api.security import revoke_key

    revoke_key(data_dir(ctx), key_id)
    console.print(f"revoked key {key_id}")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(8000, "--port", min=0, max=65535),
        time_budget: float = typer.Option(
            10.0, "--time-budget", min=0.1, help="Seconds a request may run before a 422."
        ),
        rate: float = typer.Option(20.0, "--rate", min=0.0, help="Requests/s per key (0: off)."),
        cors_origin: list[str] = typer.Option(
            None, "--cors-origin", help="Allow this browser origin (CORS is closed by default)."
        ),
    ) -> None:
        """Serve the REST API (/api/v1, docs at /docs) and the web explorer."""
        from chainsleuth.api.security import check_bind, is_loopback, keys_path

        data = data_dir(ctx)
        check_bind(host, data)  # a ChainsleuthError: one line, exit 2
        import uvicorn

        from chainsleuth.api.app import create_app

        app_ = create_app(
            data,
            time_budget_s=time_budget,
            rate=rate,
            cors_origins=list(cors_origin or []),
            require_keys=not is_loopback(host),
        )
        mode = "API keys required" if keys_path(data).exists() else "open (no key store, loopback)"
        console.print(
            Text(f"serving {data} on http://{host}:{port}/ (API /api/v1, docs /docs); {mode}"),
            soft_wrap=True,
        )
        uvicorn.run(app_, host=host, port=port, log_level="warning")

    app.add_typer(keys_app, name="keys")
