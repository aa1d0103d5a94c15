"""edgekit: compress trained models for phones and edge boards, and prove it on the device."""

__version__ = "0.1.0"
