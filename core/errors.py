"""The suite's own error: a user mistake with the file/param at fault and the fix.

The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
"""


class FRBenchError(Exception):
    """A user-facing error (bad input, bad param, missing file or weight)."""
