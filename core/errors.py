"""The suite's own error: a user mistake with the file/param at fault and the fix.

The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
"""


class FRBenchError(Exception):
    """A user-facing error (bad input, bad param, missing file or weight)."""


def _sentences(text: str, limit: int = 300) -> str:
    """Whole sentences of ``text`` (one line, at most ``limit`` characters unless the first
    sentence alone is longer): error messages are quoted without cutting a sentence."""
    import re

    flat = " ".join(text.split())
    parts = re.split(r"(?<=[.!?])\s+", flat)
    out = parts[0]
    for p in parts[1:]:
        if len(out) + 1 + len(p) > limit:
            break
        out += " " + p
    return out


def load_error(path, e: Exception, what: str = "checkpoint",
               fix: str = "delete it and retrain") -> FRBenchError:
    """The refusal of a file ``torch.load(weights_only=True)`` could not read. For a file that
    holds pickled Python objects, torch's reason (which global it refused) is quoted in whole
    sentences, not its hint to load the file unsafely: the suite never does."""
    import re

    msg = str(e)
    if "Weights only load failed" in msg:
        lines = [ln.strip() for ln in msg.splitlines()[1:] if ln.strip()
                 and not ln.strip().startswith("Check the documentation")]
        if re.search(r"(?i)unsupported global", msg):
            why = _sentences(" ".join(lines)) if lines else "objects other than tensors"
            return FRBenchError(
                f"{path}: refused to load: the file holds pickled Python objects, not only "
                f"tensors (torch: {why}). frbench loads every {what} with weights_only=True and "
                "never runs code stored in a file; use a file of plain tensors (an frbench "
                f"{what}, or the weights re-saved as a state dict)")
        msg = " ".join(lines) or msg
    return FRBenchError(f"{path}: not a readable {what} ({e.__class__.__name__}: "
                        f"{_sentences(msg)}); {fix}")
