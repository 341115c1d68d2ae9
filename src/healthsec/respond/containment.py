"""Containment adapters, dry-run by default: each returns exactly what it would do, and its rollback.

Block an address (an nftables set element), disable an account (an LDAP modify in LDIF), isolate a host,
quarantine a DICOM AE title or an HL7 sender (the HTTP call to a firewall/NAC API or the healthsec
clinical proxy). Nothing here touches a network: :func:`plan` is pure (``respond/executors.py`` runs an
approved plan when a site turns a live adapter on), and the approval rule
(:func:`approval_needed`) makes every action on a patient-connected or life-sustaining asset wait for a
person whatever the playbook says.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from healthsec.model import Asset
from healthsec.model.assets import Criticality

#: device roles that are connected to a patient even when the inventory's criticality is lower
PATIENT_CONNECTED_ROLES = frozenset(
    {
        "infusion_pump",
        "patient_monitor",
        "ventilator",
        "central_station",
        "pump_server",
        "dialysis",
        "anaesthesia",
    }
)
_SAFE = re.compile(r"^[A-Za-z0-9_.:@/ -]{1,128}$")


@dataclass(frozen=True)
class ContainmentConfig:
    """Where the adapters would act; placeholders in angle brackets until a site configures them."""

    nft_family_table: str = "inet healthsec"
    nft_set: str = "blocklist"
    ldap_base_dn: str = "<ou=staff,dc=hospital,dc=example>"
    nac_url: str = "<nac-api-url>"
    clinical_proxy_url: str = "<healthsec-proxy-url>"

    @classmethod
    def from_settings(cls, settings: Any) -> ContainmentConfig:
        base = cls()
        return cls(
            nft_family_table=settings.containment_nft_table,
            nft_set=settings.containment_nft_set,
            ldap_base_dn=settings.containment_ldap_base_dn or base.ldap_base_dn,
            nac_url=(settings.containment_nac_url or base.nac_url).rstrip("/"),
            clinical_proxy_url=(settings.containment_proxy_url or base.clinical_proxy_url).rstrip("/"),
        )


@dataclass(frozen=True)
class ContainmentPlan:
    """What an adapter would do: the exact commands or calls, and how to undo them."""

    action: str
    target: str
    adapter: str
    commands: tuple[str, ...]
    rollback: tuple[str, ...]
    http: dict[str, Any] | None = None
    rollback_http: dict[str, Any] | None = None
    ldap: dict[str, Any] | None = None  # {"dn", "modify": {attr: [op, values]}, "rollback": {...}}
    dry_run: bool = True
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "adapter": self.adapter,
            "commands": list(self.commands),
            "rollback": list(self.rollback),
            "http": self.http,
            "rollback_http": self.rollback_http,
            "ldap": self.ldap,
            "dry_run": self.dry_run,
            "notes": list(self.notes),
        }


def _check(target: str, action: str) -> str:
    if not _SAFE.match(target):
        raise ValueError(f"{action}: target {target!r} has characters no adapter accepts")
    return target


def _http(method: str, url: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    call = {"method": method, "url": url, "json": body}
    return call, f"{method} {url} {json.dumps(body, sort_keys=True)}"


def plan(action: str, target: str, cfg: ContainmentConfig | None = None) -> ContainmentPlan:
    """The dry-run plan of one containment action on one target."""
    cfg = cfg or ContainmentConfig()
    if action == "disable_account":
        target = target.rsplit("\\", 1)[-1]  # DOMAIN\user: the account name
    target = _check(target, action)
    if action == "block_address":
        ip = ipaddress.ip_address(target)  # ValueError names the bad address
        kind = "ipv4_addr" if ip.version == 4 else "ipv6_addr"
        elem = f"add element {cfg.nft_family_table} {cfg.nft_set} {{ {ip} }}"
        return ContainmentPlan(
            action,
            str(ip),
            "nftables",
            (
                f"nft add table {cfg.nft_family_table}",
                f"nft add set {cfg.nft_family_table} {cfg.nft_set} {{ type {kind}; flags interval; }}",
                f"nft {elem}",
            ),
            (f"nft delete element {cfg.nft_family_table} {cfg.nft_set} {{ {ip} }}",),
            notes=(f"the forward/input chains of {cfg.nft_family_table} drop @{cfg.nft_set}",),
        )
    if action == "disable_account":
        dn = f"uid={target},{cfg.ldap_base_dn}"
        return ContainmentPlan(
            action,
            target,
            "ldap",
            (
                f"dn: {dn}\nchangetype: modify\nreplace: pwdAccountLockedTime\n"
                "pwdAccountLockedTime: 000001010000Z\n-",
            ),
            (f"dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n-",),
            ldap={
                "dn": dn,
                "modify": {"pwdAccountLockedTime": ["replace", ["000001010000Z"]]},
                "rollback": {"pwdAccountLockedTime": ["delete", []]},
            },
            notes=("Active Directory: set userAccountControl bit 0x2 (ACCOUNTDISABLE) instead",),
        )
    if action == "isolate_host":
        call, text = _http("POST", f"{cfg.nac_url}/quarantine", {"host": target, "profile": "isolate"})
        undo, undo_text = _http("DELETE", f"{cfg.nac_url}/quarantine/{quote(target, safe='')}", {})
        return ContainmentPlan(
            action, target, "nac-http", (text,), (undo_text,), http=call, rollback_http=undo
        )
    if action in ("quarantine_dicom_ae", "quarantine_hl7_sender"):
        what = "dicom/ae" if action == "quarantine_dicom_ae" else "hl7/sender"
        call, text = _http("POST", f"{cfg.clinical_proxy_url}/deny/{what}", {"id": target})
        undo, undo_text = _http(
            "DELETE", f"{cfg.clinical_proxy_url}/deny/{what}/{quote(target, safe='')}", {}
        )
        return ContainmentPlan(
            action, target, "clinical-proxy-http", (text,), (undo_text,), http=call, rollback_http=undo
        )
    raise ValueError(f"unknown containment action {action!r}")


def patient_connected(asset: Asset | None) -> bool:
    """Patient-connected or life-sustaining: criticality patient monitoring or above, or a device role."""
    if asset is None:
        return False
    role = f"{asset.role} {asset.device_type or ''}".lower()
    return asset.criticality >= Criticality.PATIENT_MONITORING or any(
        r in role for r in PATIENT_CONNECTED_ROLES
    )


def approval_needed(asset: Asset | None, requested: str) -> tuple[bool, str]:
    """Whether a person must approve; a patient-connected or life-sustaining asset always needs one."""
    if patient_connected(asset):
        assert asset is not None
        return True, (
            f"{asset.name} is patient-connected ({asset.criticality.name.lower()}): a person must approve, "
            "whatever the playbook says"
        )
    if requested == "auto":
        return False, "the playbook allows this action without approval"
    return True, "the playbook asks for approval"
