"""Privacy transforms applied before anything leaves: pseudonyms, PHI scrubbing, DP counts, k-anonymity."""
