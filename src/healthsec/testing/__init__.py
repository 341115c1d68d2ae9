"""Test kits and documented attack generators for checking detectors against known ground truth."""
