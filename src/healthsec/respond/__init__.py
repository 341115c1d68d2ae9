"""Respond: reports for people (and later cases, playbooks and breach-notification drafts)."""
