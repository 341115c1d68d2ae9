"""The console's one navigation bar: every page of the console, in order (key, label, path)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    label: str
    href: str


NAV: tuple[NavItem, ...] = (
    NavItem("overview", "Overview", "/"),
    NavItem("incidents", "Incidents", "/incidents"),
    NavItem("alerts", "Alerts", "/alerts"),
    NavItem("assets", "Assets & risk", "/assets"),
    NavItem("paths", "Attack paths", "/paths"),
    NavItem("cases", "Cases", "/cases"),
    NavItem("sharing", "Sharing", "/sharing"),
    NavItem("intel", "Intel", "/intel"),
    NavItem("detectors", "Detectors & models", "/detectors"),
    NavItem("audit", "Audit log", "/audit"),
)
