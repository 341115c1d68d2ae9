"""Readers of threat-intelligence feeds: CSAF advisories, CISA KEV, FIRST EPSS, CSAF provider feeds."""
