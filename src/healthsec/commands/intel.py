"""``healthsec intel ...``: CSAF advisories, KEV / EPSS, matching to the inventory, ATT&CK tagging of text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import DbOption, clip, console, fail

intel_app = typer.Typer(
    help="Threat intelligence in: CSAF advisories, KEV, EPSS, matching to assets, ATT&CK tagging of text.",
    no_args_is_help=True,
)


def _emit(obj: Any) -> None:
    import orjson

    typer.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())


def _store(db: str | None) -> Any:
    from healthsec.app import open_store
    from healthsec.store import StoreError

    try:
        return open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")


@intel_app.command("import-csaf")
def import_csaf(
    targets: Annotated[list[str], typer.Argument(help="CSAF 2.0 files, folders or https URLs.")],
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Validate CSAF 2.0 advisories against the OASIS schema and store them; bad ones are named, the
    rest imported. URLs are fetched only because you named them."""
    from healthsec.services.intel import http_fetch
    from healthsec.services.intel import import_csaf as run

    _check_format(fmt)
    fetch = http_fetch() if any(t.startswith(("http://", "https://")) for t in targets) else None
    store = _store(db)
    try:
        res = run(store, targets, fetch)
    finally:
        store.close()
    if fmt == "json":
        _emit({"stored": res.stored, "kept_newer": res.kept_newer, "errors": res.errors})
    else:
        for e in res.errors:
            console.print(f"[red]refused[/] {e}", highlight=False, soft_wrap=True)
        console.print(
            f"{res.stored} advisories stored, {res.kept_newer} kept (a newer revision was already held), "
            f"{len(res.errors)} refused",
            highlight=False,
        )
    if res.errors and not res.stored:
        raise typer.Exit(1)


def _feed(kind: str, file: Path, fmt: str, db: str | None) -> None:
    from healthsec.ingest.intel.feeds import FeedError
    from healthsec.services import intel as svc

    _check_format(fmt)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file}: cannot read ({exc.strerror})") from None
    store = _store(db)
    try:
        res = (svc.import_kev if kind == "kev" else svc.import_epss)(store, raw, file.name)
    except FeedError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if fmt == "json":
        _emit(res.__dict__)
    elif res.replaced:
        console.print(
            f"{kind.upper()} {res.version or ''} of {res.as_of}: {res.entries} entries stored; "
            f"{res.findings_updated} findings updated",
            highlight=False,
        )
    else:
        console.print(
            f"{kind.upper()} of {res.as_of} is older than the stored one ({res.held_as_of}): "
            "nothing replaced",
            highlight=False,
        )


@intel_app.command("import-kev")
def import_kev(
    file: Annotated[Path, typer.Argument(help="CISA KEV catalogue (JSON or CSV, .gz allowed).")],
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Store the KEV catalogue (a newer one replaces an older one, never the reverse)."""
    _feed("kev", file, fmt, db)


@intel_app.command("import-epss")
def import_epss(
    file: Annotated[Path, typer.Argument(help="FIRST EPSS daily CSV (.gz allowed).")],
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Store EPSS scores (a newer score date replaces an older one, never the reverse)."""
    _feed("epss", file, fmt, db)


@intel_app.command("poll")
def poll(fmt: FormatOption = "table", db: DbOption = None) -> None:
    """One polling round over the CSAF providers in the settings (``intel_provider_urls``)."""
    from healthsec.config import load_settings
    from healthsec.services.intel import http_fetch, poll_providers

    _check_format(fmt)
    urls = load_settings().intel_provider_urls
    if not urls:
        raise fail("no CSAF provider configured (set intel_provider_urls); nothing is fetched by default")
    store = _store(db)
    try:
        res = poll_providers(store, urls, http_fetch())
    finally:
        store.close()
    if fmt == "json":
        _emit({"stored": res.stored, "kept_newer": res.kept_newer, "errors": res.errors})
    else:
        for e in res.errors:
            console.print(f"[red]refused[/] {e}", highlight=False, soft_wrap=True)
        console.print(f"{res.stored} advisories stored from {len(urls)} provider(s)", highlight=False)


@intel_app.command("match")
def match(
    min_confidence: Annotated[float, typer.Option(help="Report matches at or above this (0..1).")] = 0.5,
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Match stored advisories to the inventory; matched assets get the CVEs (with KEV and EPSS)."""
    from healthsec.services.intel import match_inventory

    _check_format(fmt)
    store = _store(db)
    try:
        run = match_inventory(store, min_confidence)
    finally:
        store.close()
    if fmt == "json":
        _emit({"matches": len(run.matches), "findings": run.findings, "removed": run.removed})
    else:
        console.print(
            f"{len(run.matches)} asset-advisory matches; {run.findings} vulnerability findings written, "
            f"{run.removed} stale ones removed (see `healthsec intel matches`, `healthsec risk`)",
            highlight=False,
        )


@intel_app.command("matches")
def matches(fmt: FormatOption = "table", db: DbOption = None) -> None:
    """What matched and why: asset, advisory, confidence, method, reasons, CVEs, KEV, EPSS."""
    from rich.table import Table

    from healthsec.services.intel import match_rows

    _check_format(fmt)
    store = _store(db)
    try:
        rows = match_rows(store)
    finally:
        store.close()
    if fmt == "json":
        _emit(rows)
        return
    table = Table(title=f"{len(rows)} matches")
    for col in ("asset", "advisory", "conf.", "why", "CVEs", "KEV", "EPSS max"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["asset"],
            r["advisory"],
            f"{r['confidence']:.2f}",
            f"{r['method']}: " + "; ".join(r["reasons"]),
            str(len(r["cves"])),
            ", ".join(r["kev"]) or "-",
            f"{r['epss_max']:.3f}" if r["epss_max"] is not None else "-",
        )
    console.print(table)


@intel_app.command("show")
def show(
    advisory_id: Annotated[str, typer.Argument(help="Advisory id, e.g. ICSMA-23-047-01.")],
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """One advisory: its extractive summary, products, CVEs and indicators named in its text."""
    import dataclasses

    from healthsec.store.intel import intel

    _check_format(fmt)
    store = _store(db)
    try:
        adv = intel(store).advisory(advisory_id)
    finally:
        store.close()
    if adv is None:
        raise fail(f"no advisory {advisory_id!r} stored")
    if fmt == "json":
        _emit(dataclasses.asdict(adv))
        return
    console.print(
        f"[bold]{adv.id}[/] {adv.title} (revision {adv.revision}, {adv.current_release})", highlight=False
    )
    console.print(f"summary: {adv.summary}", highlight=False, soft_wrap=True)
    for p in adv.products:
        console.print(f"  product {p.vendor} / {p.product} {p.version or ''}", highlight=False)
    for v in adv.vulns:
        console.print(f"  {v.cve} {v.cwe or ''} CVSS {v.base_score} {v.cvss_vector or ''}", highlight=False)


def _tagger(path: Path | None) -> Any:
    from healthsec.config import load_settings
    from healthsec.services.intel_text import default_tagger_dir, load_tagger

    directory = path or default_tagger_dir(load_settings().intel_tagger_dir)
    try:
        return load_tagger(directory)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise fail(str(exc)) from None


@intel_app.command("tag")
def tag(
    file: Annotated[
        str, typer.Argument(help="Text file, JSON Lines of {id, text} (.jsonl), or - for stdin.")
    ] = "-",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Input is JSON Lines {id, text}.")] = False,
    fmt: FormatOption = "table",
    model: Annotated[Path | None, typer.Option(help="Folder of a trained tagger.")] = None,
) -> None:
    """ATT&CK techniques a text describes, best first, with the sentences that support each."""
    import orjson

    from healthsec.services.intel_text import TextInputError, tag_blocks, tag_jsonl, text_blocks

    _check_format(fmt)
    tagger = _tagger(model)
    batch = jsonl or file.endswith(".jsonl")
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise fail(f"{file}: cannot read ({exc.strerror})") from None
    where = "stdin" if file == "-" else file
    try:
        if batch:
            for rec in tag_jsonl(tagger, stream, where):
                if fmt == "json":
                    typer.echo(orjson.dumps(rec).decode())
                else:
                    console.print(f"{rec['id']}: {', '.join(rec['techniques']) or '-'}", highlight=False)
            return
        out = tag_blocks(tagger, text_blocks(stream, where))
    except TextInputError as exc:
        raise fail(str(exc)) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if fmt == "json":
        typer.echo(orjson.dumps(out.as_dict()).decode())
        return
    if not out.techniques:
        console.print("no ATT&CK technique found")
    for t in out.techniques:
        console.print(f"[bold]{t}[/] {out.scores[t]:.2f}", highlight=False)
        for s in out.evidence[t]:
            console.print(f"    “{clip(s, 200)}”", highlight=False, soft_wrap=True)


@intel_app.command("train-tagger")
def train_tagger(
    data: Annotated[Path, typer.Option(help="The tram-attack-annotations folder (or .mjson + classes.txt).")],
    out: Annotated[Path | None, typer.Option(help="Folder to write the tagger to.")] = None,
    holdout: Annotated[int, typer.Option(help="Reports held out for the printed evaluation.")] = 31,
    embeddings: Annotated[
        bool, typer.Option("--embeddings/--no-embeddings", help="Blend in all-MiniLM-L6-v2 embeddings.")
    ] = False,
    attack: Annotated[
        Path | None,
        typer.Option(
            help="ATT&CK Enterprise STIX bundle: its procedure examples become extra training text."
        ),
    ] = None,
    context: Annotated[
        float, typer.Option(help="Weight of the neighbouring sentences' words (0: each sentence alone).")
    ] = 0.0,
    char_ngrams: Annotated[
        bool | None,
        typer.Option("--char-ngrams/--no-char-ngrams", help="Add char 3-5-grams to the word n-grams."),
    ] = None,
    fmt: FormatOption = "table",
) -> None:
    """Train the tagger on TRAM split by report: evaluated on ``holdout`` reports, trained on the rest."""
    from healthsec.config import load_settings
    from healthsec.ingest.intel.tram import load_tram, split_by_report
    from healthsec.services.intel_text import default_tagger_dir, evaluate, save_tagger
    from healthsec.services.intel_text import train_tagger as train

    _check_format(fmt)
    try:
        reports, classes = load_tram(data)
    except (OSError, KeyError, ValueError) as exc:
        raise fail(f"{data}: cannot read TRAM data ({exc})") from None
    examples: list[tuple[str, str]] = []
    if attack is not None:
        from healthsec.analyze.attack_build import BuildError
        from healthsec.ingest.attack_data import AttackDataError
        from healthsec.services.intel_text import attack_examples

        try:
            examples = attack_examples(attack, classes)
        except (AttackDataError, BuildError) as exc:
            raise fail(f"{attack}: {exc}") from None
    train_set, test_set = split_by_report(reports, holdout) if holdout else (reports, [])
    if context < 0:
        raise fail(f"--context must be 0 or more, not {context}")
    extra_kw = {} if char_ngrams is None else {"char_ngrams": char_ngrams}
    tagger = train(train_set, classes, embeddings=embeddings, attack=examples, context=context, **extra_kw)
    scores: dict[str, Any] = {}
    if test_set:
        from healthsec.ingest.intel.embed import embed

        scores = evaluate(tagger, test_set, embed if embeddings else None)
    tagger.meta.update({"train_reports": len(train_set), "test_reports": len(test_set), **scores})
    directory = out or default_tagger_dir(load_settings().intel_tagger_dir)
    save_tagger(tagger, directory)
    if fmt == "json":
        _emit({"saved": str(directory), **tagger.meta})
    else:
        console.print(
            f"trained on {len(train_set)} reports, saved to {directory}; held-out {len(test_set)} reports: "
            f"report-level F1 {scores.get('report_f1', '-')}, "
            f"sentence micro-F1 {scores.get('sentence_micro_f1', '-')}",
            highlight=False,
        )


@intel_app.command("iocs")
def iocs(
    file: Annotated[str, typer.Argument(help="Text file or - for stdin.")] = "-",
    fmt: FormatOption = "table",
) -> None:
    """Indicators (IPs incl. defanged, domains, URLs, hashes, CVE ids) with the sentence naming each."""
    from healthsec.services.intel_text import TextInputError, decode_block, extract_indicators

    _check_format(fmt)
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        found = extract_indicators(decode_block(raw, file))
    except OSError as exc:
        raise fail(f"{file}: cannot read ({exc.strerror})") from None
    except TextInputError as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        _emit(found)
        return
    for i in found:
        console.print(
            f"{i['type']:7} {i['value']}  — {clip(i['context'], 160)}", highlight=False, soft_wrap=True
        )


def register(app: typer.Typer) -> None:
    app.add_typer(intel_app, name="intel")
