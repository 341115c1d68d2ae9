"""KEV and EPSS files: the published layouts read, unknown layouts and bad records refused whole."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest

from healthsec.ingest.intel.feeds import FeedError, parse_epss, parse_kev

KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2025.08.25",
    "dateReleased": "2025-08-25T17:04:19.9796Z",
    "count": 2,
    "vulnerabilities": [
        {
            "cveID": "CVE-2017-0144",
            "vendorProject": "Microsoft",
            "product": "SMBv1",
            "dateAdded": "2022-02-10",
            "knownRansomwareCampaignUse": "Known",
        },
        {
            "cveID": "CVE-2020-1938",
            "vendorProject": "Apache",
            "product": "Tomcat",
            "dateAdded": "2022-03-03",
            "knownRansomwareCampaignUse": "Unknown",
        },
    ],
}


def test_kev_json_gzipped_and_csv() -> None:
    cat = parse_kev(gzip.compress(json.dumps(KEV).encode()), "kev.json.gz")
    assert (cat.version, cat.released) == ("2025.08.25", date(2025, 8, 25))
    assert cat.entries["CVE-2017-0144"].ransomware is True
    assert cat.entries["CVE-2020-1938"].ransomware is False
    csv_text = "cveID,vendorProject,product,dateAdded\nCVE-2017-0144,Microsoft,SMBv1,2022-02-10\n"
    cat = parse_kev(csv_text.encode(), "kev.csv")
    assert cat.released == date(2022, 2, 10) and list(cat.entries) == ["CVE-2017-0144"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (json.dumps({"vulnerabilities": []}).encode(), "unknown layout"),
        (b"cve,score\nCVE-2017-0144,1\n", "unknown layout"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"\x1f\x8bnot-really-gzip", "broken gzip"),
    ],
)
def test_kev_unknown_layouts_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_kev(raw, "x")


def test_kev_with_one_bad_record_is_refused_whole_naming_it() -> None:
    doc = json.loads(json.dumps(KEV))
    doc["vulnerabilities"].append({"cveID": "CVE-17-1", "dateAdded": "2022-01-01"})
    with pytest.raises(
        FeedError, match=r"1 bad record\(s\), nothing loaded: record 3: invalid CVE id 'CVE-17-1'"
    ):
        parse_kev(json.dumps(doc).encode(), "kev.json")


EPSS = (
    "#model_version:v2025.03.14,score_date:2026-01-30T12:55:00Z\n"
    "cve,epss,percentile\nCVE-2017-0144,0.94,0.99\n"
)


def test_epss_reads_model_and_score_date() -> None:
    s = parse_epss(gzip.compress(EPSS.encode()), "epss.csv.gz")
    assert (s.model_version, s.score_date) == ("v2025.03.14", date(2026, 1, 30))
    assert s.scores == {"CVE-2017-0144": (0.94, 0.99)}


def test_epss_without_date_header_needs_a_date_and_bad_lines_refuse_the_file() -> None:
    with pytest.raises(FeedError, match="no '#model_version"):
        parse_epss(b"cve,epss,percentile\nCVE-2017-0144,0.9,0.9\n", "e.csv")
    assert (
        parse_epss(b"cve,epss\nCVE-2017-0144,0.9\n", "e.csv", date(2026, 1, 1)).scores["CVE-2017-0144"][0]
        == 0.9
    )
    with pytest.raises(FeedError, match=r"line 4: score '1\.7' outside 0\.\.1"):
        parse_epss((EPSS + "CVE-2020-1938,1.7,0.5\n").encode(), "e.csv")
    with pytest.raises(FeedError, match="unknown layout"):
        parse_epss(b"#model_version:v1,score_date:2026-01-01\nid,prob\n", "e.csv")
