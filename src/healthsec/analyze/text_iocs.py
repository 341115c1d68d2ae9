"""Indicators in report text (IPs, defanged ones too, domains, URLs, hashes, CVE ids) with the sentence
each appears in, through the ``ioc-finder`` library (LGPL-3.0, used as a library, unmodified)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from healthsec.analyze.text_attack import sentence_spans

KINDS = {
    "ipv4s": "ipv4",
    "ipv6s": "ipv6",
    "domains": "domain",
    "urls": "url",
    "md5s": "md5",
    "sha1s": "sha1",
    "sha256s": "sha256",
    "sha512s": "sha512",
    "cves": "cve",
    "email_addresses": "email",
}
# file names ioc-finder can read as domains ("setup.exe", "report.pdf")
_FILE_TLDS = re.compile(
    r"\.(exe|dll|sys|bat|ps1|vbs|js|pdf|docx?|xlsx?|zip|rar|txt|log|json|xml|py|sh)$", re.I
)


def indicators_with_context(text: str, max_context: int = 300) -> Iterator[dict[str, Any]]:
    """Each distinct indicator once: ``{"type", "value", "context"}`` (the first sentence naming it)."""
    import ioc_fanger
    from ioc_finder import find_iocs

    fanged = ioc_fanger.fang(text)
    found = find_iocs(fanged, parse_urls_without_scheme=False)
    spans = sentence_spans(fanged)
    lower = fanged.lower()
    seen: set[tuple[str, str]] = set()
    for key, kind in KINDS.items():
        for value in found.get(key) or []:
            value = str(value).rstrip(".,;:)]'\"") if kind == "url" else str(value)
            if kind == "domain" and _FILE_TLDS.search(value):
                continue
            if (kind, value.lower()) in seen:
                continue
            seen.add((kind, value.lower()))
            pos = lower.find(value.lower())
            context = next((fanged[s:e] for s, e in spans if s <= pos < e), "") if pos >= 0 else ""
            yield {"type": kind, "value": value, "context": context[:max_context]}
