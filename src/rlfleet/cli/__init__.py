"""The ``rlfleet`` command line: a thin layer over the SDK."""
