"""healthsec: AI-driven cyber-defence for hospitals (detect, analyse, share, react)."""

__version__ = "0.1.0"
