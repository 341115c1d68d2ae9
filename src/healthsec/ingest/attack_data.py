"""Read ATT&CK STIX bundles and MISP clusters from disk; save and load the compact pinned ATT&CK copy."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from platformdirs import user_data_dir

from healthsec.analyze.attack import AttackKB
from healthsec.analyze.attack_build import FORMAT, BuildError, build_domain, merge
from healthsec.config import env_var

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "attack" / "attack.json.gz"
ENV_VAR = "HEALTHSEC_ATTACK_DATA"


class AttackDataError(RuntimeError):
    """The ATT&CK data cannot be read or built; the message names the file and the reason."""


def user_copy() -> Path:
    """Where ``healthsec attack update`` writes its refreshed copy (shadows the shipped one)."""
    return Path(user_data_dir("healthsec")) / "attack" / "attack.json.gz"


def active_path() -> Path:
    """The copy in use: ``$HEALTHSEC_ATTACK_DATA``, else the user's updated copy, else the shipped one."""
    env = env_var(ENV_VAR)
    if env:
        return Path(env)
    user = user_copy()
    return user if user.is_file() else SHIPPED


def read_json(path: Path) -> Any:
    """Read a JSON or gzipped JSON file; errors name the file."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return orjson.loads(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise AttackDataError(f"{path}: cannot read: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise AttackDataError(f"{path}: not valid JSON: {exc}") from None


def _source(path: Path, bundle: Any) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "file": path.name,
        "sha256": digest,
        "bundle_id": bundle.get("id") if isinstance(bundle, dict) else None,
    }


def build_document(bundle_paths: Sequence[Path], misp_threat_actors: Path | None) -> dict[str, Any]:
    """Build the compact document from STIX bundle files and (optionally) the MISP threat-actor cluster."""
    parts = []
    sources = []
    for path in bundle_paths:
        bundle = read_json(path)
        if not isinstance(bundle, dict):
            raise AttackDataError(f"{path}: not a STIX bundle (top level is not an object)")
        try:
            parts.append(build_domain(bundle))
        except BuildError as exc:
            raise AttackDataError(f"{path}: {exc}") from None
        sources.append(_source(path, bundle))
    cluster = None
    if misp_threat_actors is not None:
        cluster = read_json(misp_threat_actors)
        if not isinstance(cluster, dict) or not isinstance(cluster.get("values"), list):
            raise AttackDataError(f"{misp_threat_actors}: not a MISP galaxy cluster (no 'values' list)")
        sources.append(_source(misp_threat_actors, cluster) | {"bundle_id": cluster.get("uuid")})
    doc = merge(parts, cluster, sources)
    doc["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return doc


def update_document(
    current: dict[str, Any] | None, bundle_paths: Sequence[Path], misp_threat_actors: Path | None
) -> dict[str, Any]:
    """Replace the domains found in ``bundle_paths`` and keep the other domains of ``current``."""
    fresh = build_document(bundle_paths, misp_threat_actors)
    if current is None:
        return fresh
    parts = [*current.get("domains", {}).values(), *fresh["domains"].values()]
    sources = [
        s
        for s in current.get("sources", ())
        if s.get("file") not in {f.get("file") for f in fresh["sources"]}
    ] + fresh["sources"]
    actors_cluster = None
    if misp_threat_actors is not None:
        actors_cluster = read_json(misp_threat_actors)
    doc = merge(parts, actors_cluster, sources)
    if actors_cluster is None:
        doc["healthcare_actors"] = current.get("healthcare_actors", [])
    doc["built_at"] = fresh["built_at"]
    return doc


def save_document(doc: dict[str, Any], path: Path) -> int:
    """Write the gzipped JSON atomically (temp file, then rename); return its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), compresslevel=9, mtime=0)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def load_document(path: Path | None = None) -> dict[str, Any]:
    """Read the compact document and check its format version."""
    path = path or active_path()
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "domains" not in doc:
        raise AttackDataError(f"{path}: not a healthsec ATT&CK copy (format {FORMAT}); rebuild it")
    return doc


def load_attack(path: Path | None = None) -> AttackKB:
    """The ATT&CK knowledge base from the pinned copy (see :func:`active_path`)."""
    return AttackKB(load_document(path))
