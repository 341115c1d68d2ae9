"""Playbook files: a bad file is refused with file, line and field; triggers; the approval rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.model import Asset, Severity
from healthsec.model.assets import Criticality
from healthsec.respond.containment import approval_needed, plan
from healthsec.respond.playbook import IncidentContext, PlaybookError, builtin, load_all, load_text

GOOD = """\
name: demo
trigger:
  tactics: [impact]
steps:
  - kind: open_case
  - kind: contain
    action: block_address
    target: external_ip
"""


def test_the_five_shipped_playbooks_load() -> None:
    names = {b.name for b in builtin()}
    assert names == {
        "ransomware",
        "pacs_exfiltration",
        "device_spoofing",
        "insider_snooping",
        "credential_bruteforce",
    }


def test_unknown_action_names_line_and_field() -> None:
    bad = GOOD.replace("action: block_address", "action: nuke_from_orbit")
    with pytest.raises(PlaybookError) as err:
        load_text(bad, "pb.yaml")
    assert err.value.file == "pb.yaml"
    assert err.value.line == 7
    assert err.value.field == "steps.1.action"
    assert str(err.value).startswith("pb.yaml:7: steps.1.action:")


def test_unknown_key_and_unknown_step_kind() -> None:
    with pytest.raises(PlaybookError) as err:
        load_text(GOOD.replace("  tactics: [impact]", "  tactics: [impact]\n  colour: red"), "x.yaml")
    assert (err.value.line, err.value.field) == (4, "trigger.colour")
    with pytest.raises(PlaybookError) as err:
        load_text(GOOD.replace("kind: open_case", "kind: reboot_hospital"), "x.yaml")
    assert (err.value.line, err.value.field) == (5, "steps.0.kind")


def test_step_before_a_case_is_refused_at_its_line() -> None:
    text = GOOD.replace("  - kind: open_case\n", "  - kind: notify\n    event: hello\n  - kind: open_case\n")
    with pytest.raises(PlaybookError) as err:
        load_text(text, "x.yaml")
    assert err.value.line == 5
    assert "needs a case" in err.value.reason


def test_bad_yaml_and_bad_duration() -> None:
    with pytest.raises(PlaybookError) as err:
        load_text("name: x\nsteps: [\n", "broken.yaml")
    assert err.value.line is not None
    assert "not valid YAML" in str(err.value)
    text = GOOD + "  - kind: add_task\n    title: t\n    due_in: soon\n"
    with pytest.raises(PlaybookError) as err:
        load_text(text, "x.yaml")
    assert (err.value.line, err.value.field) == (11, "steps.2.due_in")


def test_one_bad_file_refuses_the_whole_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD.replace("name: demo", "name: Bad Name"), encoding="utf-8")
    with pytest.raises(PlaybookError, match=r"b\.yaml:1: name"):
        load_all([tmp_path])
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(PlaybookError, match="duplicate playbook 'demo'"):
        load_all([tmp_path])


def test_trigger_matching() -> None:
    book = load_text(GOOD.replace("  tactics: [impact]", "  techniques: [T1110]\n  min_severity: high"))
    ctx = IncidentContext(subject="i", severity=Severity.HIGH, techniques=frozenset({"T1110.003"}))
    assert book.matches(ctx)
    assert not book.matches(IncidentContext(subject="i", severity=Severity.MEDIUM, techniques=ctx.techniques))
    assert not book.matches(
        IncidentContext(subject="i", severity=Severity.HIGH, techniques=frozenset({"T1111"}))
    )


def _asset(role: str, crit: Criticality) -> Asset:
    return Asset(id=f"a-{role}", name=f"{role}-1", role=role, zone="devices", criticality=crit)


def test_patient_connected_assets_always_need_approval() -> None:
    pump = _asset("infusion_pump", Criticality.LIFE_SUSTAINING)
    assert approval_needed(pump, "auto")[0] is True
    assert "patient-connected" in approval_needed(pump, "auto")[1]
    # a device role counts even when the inventory put a low criticality on it
    assert approval_needed(_asset("patient_monitor", Criticality.BUSINESS), "auto")[0] is True
    assert approval_needed(_asset("workstation", Criticality.CLINICAL_SUPPORT), "auto")[0] is False
    assert approval_needed(_asset("workstation", Criticality.CLINICAL_SUPPORT), "required")[0] is True
    assert approval_needed(None, "auto")[0] is False


def test_dry_run_plans_say_exactly_what_they_would_do() -> None:
    p = plan("block_address", "203.0.113.7")
    assert p.dry_run
    assert "nft add element inet healthsec blocklist { 203.0.113.7 }" in p.commands
    assert p.rollback == ("nft delete element inet healthsec blocklist { 203.0.113.7 }",)
    ldap = plan("disable_account", "n011")
    assert ldap.commands[0].startswith("dn: uid=n011,")
    assert plan("disable_account", "HOSP\\n011").commands == ldap.commands  # DOMAIN\user
    assert plan("quarantine_dicom_ae", "VIEWER_02").http == {
        "method": "POST",
        "url": "<healthsec-proxy-url>/deny/dicom/ae",
        "json": {"id": "VIEWER_02"},
    }
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        plan("block_address", "not-an-ip")
    with pytest.raises(ValueError, match="characters no adapter accepts"):
        plan("disable_account", "x; rm -rf /")


def test_a_target_cannot_change_the_path_of_a_rollback_call() -> None:
    from healthsec.respond.containment import plan

    assert plan("isolate_host", "ws/../admin").rollback == (
        "DELETE <nac-api-url>/quarantine/ws%2F..%2Fadmin {}",
    )
    assert plan("quarantine_hl7_sender", "LAB SYS").rollback_http == {
        "method": "DELETE",
        "url": "<healthsec-proxy-url>/deny/hl7/sender/LAB%20SYS",
        "json": {},
    }
