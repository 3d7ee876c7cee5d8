"""`labctl pki mint|list|check|rotate`: the lab's certificates, minted from the inventory."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.pki.lab_pki import PkiSession
    from labctl.pki.mint import MintReport

app = typer.Typer(help="Mint, list, check and rotate the lab's certificates.", no_args_is_help=True)


class BackendName(StrEnum):
    inventory = "inventory"
    auto = "auto"
    cfssl = "cfssl"
    builtin = "builtin"


BackendOpt = typer.Option(
    BackendName.inventory, "--backend", help="cfssl, builtin, auto, or what the inventory says."
)


def _session(path: Path, backend: BackendName = BackendName.inventory) -> PkiSession:
    from labctl.cli.platform_choice import require_inventory
    from labctl.pki.lab_pki import PkiSession

    chosen = None if backend is BackendName.inventory else backend.value
    return PkiSession(require_inventory(path), path.parent, chosen)


def _print_report(report: MintReport, output: OutputFormat, verb: str) -> None:
    if output is OutputFormat.json:
        minted = [{"name": f.name, "reason": f.reason} for f in report.minted]
        resealed = [{"name": f.name, "reason": f.reason} for f in report.resealed]
        document = {verb: minted, "unchanged": report.unchanged, "resealed": resealed}
        typer.echo(json.dumps(document, indent=2))
        return
    for finding in report.resealed:
        typer.echo(f"re-sealed {finding.name} ({finding.reason})")
    for finding in report.minted:
        typer.echo(f"{verb} {finding.name} ({finding.reason})")
    if not report.minted and not report.resealed:
        typer.echo(f"nothing to do: {len(report.unchanged)} item(s) already valid")
    elif not report.minted:
        typer.echo(f"{len(report.resealed)} key(s) re-sealed, nothing to mint")
    else:
        typer.echo(f"{len(report.minted)} {verb}, {len(report.unchanged)} unchanged")


@app.command()
def mint(
    inventory: Path = InventoryOption,
    backend: BackendName = BackendOpt,
    output: OutputFormat = OutputOption,
) -> None:
    """Mint what is missing, expiring, or no longer matching the inventory; nothing else.

    Certificates and CSR JSON are written to cluster.pki.directory (ssl/), keys 0600,
    CA keys only encrypted with cluster.pki.passphrase.

    Example: LABCTL_CA_PASSPHRASE=... labctl pki mint
    """
    _print_report(_session(inventory, backend).mint(), output, "minted")


@app.command()
def check(
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """List certificates that are missing, expiring or do not match the inventory (exit 1 if any).

    Also opens each CA key with cluster.pki.passphrase: a passphrase that does not open
    one, or a key sealed more weakly than labctl seals today, is listed too.

    Example: LABCTL_CA_PASSPHRASE=... labctl pki check -o json
    """
    session = _session(inventory)
    findings = session.findings() + session.key_findings()
    if output is OutputFormat.json:
        typer.echo(json.dumps([{"name": f.name, "reason": f.reason} for f in findings], indent=2))
    else:
        for f in findings:
            typer.echo(f"{f.name}: {f.reason}")
        typer.echo("all certificates valid" if not findings else f"{len(findings)} to (re)mint")
    if findings:
        raise typer.Exit(1)


@app.command("list")
def list_certs(
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Every certificate: subject, issuer, expiry, SANs, and whether it needs work.

    Example: labctl pki list
    """
    from cryptography import x509

    from labctl.pki.specs import plan_certificates

    session = _session(inventory)
    store = session.store
    problems = {f.name: f.reason for f in session.findings()}
    rows = []
    for spec in plan_certificates(session.input):
        pem = store.read_cert(spec.name)
        cert = x509.load_pem_x509_certificate(pem) if pem else None
        rows.append(
            {
                "name": spec.name,
                "subject": spec.common_name,
                "issuer": spec.ca,
                "expires": cert.not_valid_after_utc.isoformat() if cert else None,
                "hosts": list(spec.hosts),
                "owners": list(spec.owner_nodes),
                "status": problems.get(spec.name, "ok"),
            }
        )
    if output is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from labctl.cli.tables import Console, Table

    table = Table(title=f"certificates in {store.root}")
    for column in ("name", "subject", "issuer", "expires", "SANs", "status"):
        table.add_column(column)
    for r in rows:
        expires = str(r["expires"])[:10] if r["expires"] else "-"
        status = str(r["status"])
        table.add_row(
            str(r["name"]),
            str(r["subject"]),
            str(r["issuer"]),
            expires,
            str(len(r["hosts"])),  # type: ignore[arg-type]
            status if status == "ok" else f"[yellow]{status}[/]",
        )
    Console().print(table)


@app.command()
def rotate(
    name: str | None = typer.Argument(None, help="Only this certificate (default: every leaf)."),
    include_cas: bool = typer.Option(False, "--include-cas", help="Re-mint the CAs too."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
    inventory: Path = InventoryOption,
    backend: BackendName = BackendOpt,
    output: OutputFormat = OutputOption,
) -> None:
    """Re-mint certificates; old service-account public keys stay trusted.

    Example: labctl pki rotate apiserver --yes
    """
    from labctl.cli.confirm import confirm

    session = _session(inventory, backend)
    session.check_secrets()  # before asking: a missing passphrase fails at once
    what = name or ("every certificate and both CAs" if include_cas else "every leaf certificate")
    confirm(f"re-mint {what}?", yes)
    _print_report(session.rotate(name, include_cas), output, "re-minted")
