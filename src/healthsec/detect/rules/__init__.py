"""Rule detectors: built-in authentication and host rules (and the Sigma engine)."""

from healthsec.detect.rules.auth import BruteForceDetector, LogonNoveltyDetector
from healthsec.detect.rules.host import HostRuleDetector

__all__ = ["BruteForceDetector", "HostRuleDetector", "LogonNoveltyDetector"]
