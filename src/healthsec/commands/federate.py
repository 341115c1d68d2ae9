"""``healthsec federate certs|schema|serve|join``: train flow models across hospitals, data stays.

The global model a member receives is registered in its model store (kind ``flows-federated``);
promoting it is the member's own decision: ``healthsec models promote flows-federated N``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthsec.commands.groups import DbOption, OldInputFormatOption, fail, input_format
from healthsec.commands.models import RegisterOption
from healthsec.config import hand_down

if TYPE_CHECKING:
    from healthsec.detect.ml.features import FeatureSchema
    from healthsec.federated.client import MemberData

hand_down({"FLWR_TELEMETRY_ENABLED": "0"})  # before Flower is ever imported, in this process and children

federate_app = typer.Typer(
    help="Federated training across hospitals (Flower, mutual TLS, DP, secure aggregation).",
    no_args_is_help=True,
)
CertsOption = Annotated[Path, typer.Option("--certs", help="Consortium directory (from `federate certs`).")]
SchemaOption = Annotated[Path, typer.Option("--schema", help="The consortium's feature schema (JSON).")]
FlowInputFormat = Annotated[
    str | None,
    typer.Option("--input-format", "-f", help="What is read: nsl-kdd, unsw-nb15, cicflowmeter, zeek or csv."),
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure", help="No TLS, no member check: loopback only, for trying things out.")
]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("healthsec.federated").setLevel(logging.INFO)
    logging.getLogger("flwr").setLevel(logging.INFO if verbose else logging.WARNING)


@federate_app.command("certs")
def certs(
    directory: Annotated[Path, typer.Argument(help="Consortium directory to create or extend.")],
    member: Annotated[list[str] | None, typer.Option("--member", help="Member name (repeat).")] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Coordinator host name or IP for its certificate (repeat)."),
    ] = None,
    revoke: Annotated[
        str | None, typer.Option("--revoke", help="Put this member's certificate on the CRL.")
    ] = None,
) -> None:
    """Create the consortium CA, the coordinator's certificate and member certificates; or revoke one."""
    from healthsec.federated.pki import PkiError, create_consortium
    from healthsec.federated.pki import revoke as do_revoke

    try:
        if revoke:
            serial = do_revoke(directory, revoke)
            typer.echo(f"revoked member {revoke} (serial {serial:x}); crl.pem updated")
            return
        written = create_consortium(directory, member or [], host or ["localhost", "127.0.0.1"])
    except PkiError as exc:
        raise fail(str(exc)) from exc
    for p in written:
        typer.echo(f"wrote {p}")
    if not written:
        typer.echo("nothing to do: every member already has a certificate")


@federate_app.command("schema")
def schema(
    files: Annotated[list[Path], typer.Argument(help="Reference flow files.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Schema JSON to write.")] = None,
    fmt: FlowInputFormat = None,
    old_format: OldInputFormatOption = None,
    label_column: Annotated[str | None, typer.Option("--label-column")] = None,
    old_output: Annotated[
        Path | None, typer.Option("--output", hidden=True, help="Old name of --out.")
    ] = None,
) -> None:
    """Fit the feature schema every member must share (columns, categories, scaler)."""
    fmt = input_format(fmt, old_format)
    output = out or old_output
    if output is None:
        raise fail("missing option --out (the schema JSON to write)")
    from healthsec.federated.artefact import schema_hash
    from healthsec.federated.run import fit_schema
    from healthsec.ingest.flows import FlowFormatError

    try:
        sch, rows = fit_schema(files, fmt, label_column)
    except FlowFormatError as exc:
        raise fail(str(exc)) from exc
    output.write_text(json.dumps(sch.to_dict(), indent=1))
    typer.echo(
        f"wrote {output}: {len(sch.numeric)} numeric, {len(sch.categorical)} categorical columns,"
        f" {len(sch.dense_names)} model inputs, from {rows} rows; sha256 {schema_hash(sch)[:16]}"
    )


@federate_app.command("serve")
def serve(
    schema: SchemaOption,
    certs: Annotated[Path | None, typer.Option("--certs", help="Consortium directory.")] = None,
    address: Annotated[str, typer.Option("--address", help="host:port to listen on.")] = "127.0.0.1:9092",
    rounds: Annotated[int, typer.Option("--rounds")] = 10,
    min_members: Annotated[int, typer.Option("--min-members", help="Members needed for a round.")] = 2,
    expect: Annotated[
        int, typer.Option("--expect", help="Wait (at most --wait s) for this many members before round 1.")
    ] = 0,
    aggregation: Annotated[
        str, typer.Option("--aggregation", help="fedavg, trimmed-mean, median or krum.")
    ] = "fedavg",
    no_secagg: Annotated[bool, typer.Option("--no-secagg", help="Turn secure aggregation off.")] = False,
    member_dp: Annotated[
        float,
        typer.Option("--member-dp", help="Member-level DP noise multiplier (needs --no-secagg); 0 = off."),
    ] = 0.0,
    member_clip: Annotated[float, typer.Option("--member-clip", help="Member-level DP clipping norm.")] = 1.0,
    round_timeout: Annotated[
        float, typer.Option("--round-timeout", help="Seconds a round waits for members.")
    ] = 300.0,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the minimum number of members.")
    ] = 300.0,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the global model here.")] = None,
    insecure: InsecureOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Coordinate a federation: only consortium members (mutual TLS, CRL) take part."""
    _logging(verbose)
    from healthsec.federated.run import SetupError, load_schema
    from healthsec.federated.run import serve as do_serve
    from healthsec.federated.server import AGGREGATIONS, FedOptions

    if aggregation not in AGGREGATIONS:
        raise fail(f"--aggregation {aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
    if not insecure and certs is None:
        raise fail("--certs is required (or --insecure, loopback only)")
    if (aggregation != "fedavg" or member_dp > 0) and not no_secagg:
        raise fail(
            f"{'member-level DP' if member_dp > 0 else aggregation} needs each member's update:"
            " add --no-secagg"
        )
    opts = FedOptions(
        rounds=rounds, min_members=min_members, aggregation=aggregation, secagg=not no_secagg,
        member_dp_noise=member_dp, member_dp_clip=member_clip, round_timeout=round_timeout,
    )  # fmt: skip
    try:
        result = do_serve(certs, address, load_schema(schema), opts, wait, out, insecure, expect)
    except (SetupError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    prov = result.provenance
    typer.echo(
        f"federation finished: {prov['rounds']} rounds, members {', '.join(prov['members']) or '(none)'}"
    )
    typer.echo(
        f"aggregation {prov['aggregation']}, "
        f"secure aggregation {'on' if prov['secure_aggregation'] else 'off'}"
    )
    for m, e in sorted(prov["record_level_epsilon"].items()):
        typer.echo(f"  {m}: record-level epsilon spent {e:.2f}")
    for line in prov["excluded"]:
        typer.echo(f"  {line}")
    if result.artefact:
        typer.echo(f"global model written to {result.artefact}")


@federate_app.command("join")
def join(
    name: Annotated[str, typer.Option("--name", help="This member's name (its certificate).")],
    data: Annotated[
        list[Path], typer.Argument(help="This hospital's labelled flow files (they never leave).")
    ],
    schema: SchemaOption,
    out: Annotated[Path, typer.Option("--out", help="Where the global model is kept as a candidate.")],
    fmt: FlowInputFormat = None,
    old_format: OldInputFormatOption = None,
    certs: Annotated[
        Path | None, typer.Option("--certs", help="Directory with ca.pem and members/NAME.*")
    ] = None,
    address: Annotated[str, typer.Option("--address", help="Coordinator host:port.")] = "127.0.0.1:9092",
    label_column: Annotated[str | None, typer.Option("--label-column")] = None,
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="Record-level DP budget over the federation.")
    ] = 3.0,
    no_dp: Annotated[bool, typer.Option("--no-dp", help="Train without record-level DP.")] = False,
    clip: Annotated[float, typer.Option("--clip", help="Per-example gradient clipping norm.")] = 1.0,
    dp_batch: Annotated[
        int, typer.Option("--dp-batch", help="Expected DP-SGD batch (learning rate scaled with it).")
    ] = 1024,
    dp_ae_noise: Annotated[
        float,
        typer.Option(
            "--dp-ae-noise", help="Autoencoder's DP noise multiplier as a multiple of the classifier's."
        ),
    ] = 4.0,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to keep retrying the coordinator.")] = 60.0,
    insecure: InsecureOption = False,
    register: RegisterOption = True,
    db: DbOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Take part in a federation with this hospital's data; the global model comes back as a candidate
    in this member's model store (promote it with `healthsec models promote flows-federated N`)."""
    fmt = input_format(fmt, old_format)
    _logging(verbose)
    import grpc

    from healthsec.federated.client import Privacy
    from healthsec.federated.run import SetupError, load_member_data, load_schema
    from healthsec.federated.run import join as do_join

    if not insecure and certs is None:
        raise fail("--certs is required (or --insecure, loopback only)")
    if dp_batch < 1 or clip <= 0 or dp_ae_noise <= 0:
        raise fail(
            f"--dp-batch must be >= 1, --clip and --dp-ae-noise > 0 (got {dp_batch}, {clip}, {dp_ae_noise})"
        )
    if insecure and address.rpartition(":")[0].strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        raise fail("--insecure connects to loopback only")
    try:
        sch = load_schema(schema)
        rows = load_member_data(data, fmt, label_column, sch)
        client = do_join(
            certs,
            name,
            address,
            rows,
            sch,
            Privacy(None if no_dp else epsilon, clip=clip, batch=dp_batch, autoencoder_noise=dp_ae_noise),
            out,
            insecure,
            wait,
        )
    except (SetupError, ValueError) as exc:
        raise fail(str(exc)) from exc
    except PermissionError as exc:
        raise fail(f"member {name}: refused by the coordinator: {exc}") from exc
    except grpc.RpcError as exc:
        raise fail(f"member {name}: coordinator refused or closed the connection: {exc.details()}") from exc
    eps = ", ".join(f"{e:.2f}" for e in client.epsilons) if not no_dp else "off"
    typer.echo(
        f"member {name}: {len(client.epsilons)} rounds trained on {len(rows.x)} rows;"
        f" epsilon per round: {eps}"
    )
    if not client.candidate:
        typer.echo(f"member {name}: no global model received")
        raise typer.Exit(2)
    typer.echo(f"candidate global model in {out}")
    _register(client.candidate, sch, rows, data, name, register=register, db=db)


def _register(
    candidate: Path, sch: FeatureSchema, rows: MemberData, data: list[Path], name: str, *, register: bool,
    db: str | None,
) -> None:  # fmt: skip
    """Record the candidate in this member's model store, after checking its schema is the member's."""
    from healthsec.commands.models import register_trained_cli
    from healthsec.federated.artefact import ArtefactError, check_candidate
    from healthsec.federated.run import member_metrics

    if not register:
        return
    try:
        meta = check_candidate(candidate, sch)
    except ArtefactError as exc:
        raise fail(str(exc)) from exc
    register_trained_cli(
        db, "flows-federated", candidate, data, register=True, promote=False,
        metrics=member_metrics(candidate, rows),
        evaluation=f"member {name}'s own {len(rows.x)} rows, which it trained on (not a held-out test)",
        provenance={"trained_by": "healthsec federate join", "federation": dict(meta["provenance"])},
    )  # fmt: skip
    typer.echo("this member decides: healthsec models promote flows-federated VERSION")


def register(app: typer.Typer) -> None:
    app.add_typer(federate_app, name="federate")
