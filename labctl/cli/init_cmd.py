"""`labctl init`: write a commented starter inventory that validates as it stands.

A newcomer's first step should not be an empty file and a reference page: this asks
for the few choices only they can make (how many servers, which OS, PDU and switch,
which networks), renders the starter (labctl.inventory.starter, pure), checks it with
the same checks `labctl validate` runs, and writes it atomically, never over an
existing file unless told to.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import typer


class OsChoice(StrEnum):
    flatcar = "flatcar"
    fcos = "fcos"


class PduChoice(StrEnum):
    apc_rpdu = "apc-rpdu"
    apc_rpdu2 = "apc-rpdu2"
    digipower_swh = "digipower-swh"
    none = "none"


class SwitchChoice(StrEnum):
    frr = "frr"
    eos = "eos"
    ios = "ios"
    none = "none"


def init(
    output: str = typer.Option(
        "inventory.yaml", "--output", help="File to write, or - for standard output."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
    servers: int | None = typer.Option(
        None, "--servers", help="How many servers, named node1, node2, ... (default 3)."
    ),
    server: list[str] = typer.Option(
        None, "--server", help="A server's name; repeat for each server (instead of --servers)."
    ),
    lab: str = typer.Option("lab", "--lab", help="The lab's short name (lab.name)."),
    domain: str = typer.Option("lab.example.net", "--domain", help="The lab's DNS domain."),
    os: OsChoice = typer.Option(OsChoice.flatcar, "--os", help="flatcar or fcos."),
    pdu_profile: PduChoice = typer.Option(
        PduChoice.apc_rpdu,
        "--pdu-profile",
        help="The PDU's profile (APC AP7920/AP7921: apc-rpdu; APC AP8xxx such as AP8941: "
        "apc-rpdu2; docs/power.md), or none for no PDU.",
    ),
    switch_platform: SwitchChoice = typer.Option(
        SwitchChoice.frr, "--switch-platform", help="The switch's platform, or none for none."
    ),
    public_cidr: str = typer.Option(
        "192.0.2.0/24", "--public-cidr", help="The servers' network (.1 gateway, .10 boot)."
    ),
    mgmt_cidr: str = typer.Option(
        "198.51.100.0/24", "--mgmt-cidr", help="The BMCs', switch's and PDU's network."
    ),
    pod_cidr: str = typer.Option("10.244.0.0/16", "--pod-cidr", help="The pod network."),
    service_cidr: str = typer.Option(
        "10.96.0.0/16", "--service-cidr", help="The service cluster IPs."
    ),
    calico_manifest: str | None = typer.Option(
        None, "--calico-manifest", help="URL of Calico's install manifest (a real lab needs it)."
    ),
    calico_sha256: str | None = typer.Option(
        None, "--calico-sha256", help="SHA-256 of that manifest, 64 hex digits."
    ),
    ssh_key: list[Path] = typer.Option(
        None, "--ssh-key", help="A public key file (id_ed25519.pub) the nodes accept; repeatable."
    ),
) -> None:
    """Write a commented starter inventory that `labctl validate` accepts.

    Each field carries its description from the schema; versions are left out (they
    default to what this labctl release is tested with). Edit the placeholders (names,
    MACs, addresses, disks), then validate.

    Example: labctl init --server ada --server bob --server cyd --os fcos --output lab.yaml
    """
    import uuid

    from labctl.cli.outfile import check_destination, write_output
    from labctl.errors import UsageError
    from labctl.inventory import check_text, format_problem
    from labctl.inventory.starter import (
        MAX_SERVERS,
        StarterOptions,
        default_names,
        render_starter,
    )

    if servers is not None and server:
        raise UsageError("give --servers N or --server NAME (repeated), not both")
    if servers is not None and not 1 <= servers <= MAX_SERVERS:
        # Before the names are made: --servers 999999999 must not fill the memory first.
        raise UsageError(f"init: labctl init writes 1 to {MAX_SERVERS} servers, not {servers}")
    names = tuple(server) if server else default_names(3 if servers is None else servers)
    keys = []
    for key_file in ssh_key or ():
        try:
            keys += [line for line in key_file.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"--ssh-key {key_file}: cannot read it ({exc.__class__.__name__})"
            ) from None
    if (calico_manifest is None) != (calico_sha256 is None):
        raise UsageError("--calico-manifest and --calico-sha256 go together")
    manifest = (calico_manifest, calico_sha256) if calico_manifest and calico_sha256 else None
    target = None if output == "-" else Path(output)
    if target is not None:
        target = check_destination(target, "--output")
        if target.exists() and not force:
            raise UsageError(f"{target} exists; labctl init leaves it alone (--force overwrites)")
    options = StarterOptions(
        servers=names,
        fsid=str(uuid.uuid4()),
        lab=lab,
        domain=domain,
        os=os.value,
        pdu_profile=pdu_profile.value,
        switch_platform=switch_platform.value,
        public_cidr=public_cidr,
        mgmt_cidr=mgmt_cidr,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        authorized_keys=tuple(keys),
        calico_manifest=manifest,
    )
    try:
        text = render_starter(options)
    except ValueError as exc:
        raise UsageError(f"init: {exc}") from None
    # The same checks as `labctl validate`: a choice that cannot work is refused here,
    # with validate's sentences, and nothing is written.
    result = check_text(text, output if target is not None else "<init>", target)
    if result.errors:
        for problem in result.errors:
            typer.echo(format_problem(problem), err=True)
        raise UsageError(
            "init: the file these choices make does not validate (above); nothing written"
        )
    if target is None:
        typer.echo(text, nl=False)
        return
    write_output(target, text.encode(), "--output")
    typer.echo(
        f"wrote {target} ({len(names)} servers); edit it, then: labctl validate {target}",
        err=True,
    )
    # The secrets are references: a newcomer learns here which variables to export
    # before `labctl sim up` or `bootstrap` read them, not from the first refusal.
    variables = list(dict.fromkeys(re.findall(r"\{env: ([A-Za-z_][A-Za-z0-9_]*)\}", text)))
    if variables:
        typer.echo(
            "before `labctl sim up` or `labctl bootstrap`, export the secrets it names: "
            + ", ".join(variables)
            + " (the CA passphrase: 12 characters or more)",
            err=True,
        )
