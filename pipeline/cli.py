"""The ``frbench`` command. Each subcommand lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int | None``; modules are imported only when their
command runs, so ``frbench --help`` stays fast and needs no torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from core.errors import FRBenchError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth-faces": ("pipeline.cmd_synth", "draw the built-in synthetic face set"),
    "degrade": ("pipeline.cmd_degrade", "build a degraded test set (gt/, lq/, manifest.json)"),
    "testsets": ("pipeline.cmd_degrade", "build every test set named in params.yaml"),
    "evaluate": ("pipeline.cmd_evaluate", "score a folder of restored images against GT"),
    "train": ("pipeline.cmd_train", "train a method (or pretrain the prior / the DRE)"),
    "restore": ("pipeline.cmd_restore", "restore a folder of LQ images with a checkpoint"),
    "preflight": ("pipeline.cmd_preflight", "check data folders and weight files before a repro"),
    "cell": ("pipeline.cmd_cell", "restore one test set with one method and evaluate it"),
    "submit": ("pipeline.cmd_submit", "put a folder of your own restored images on the leaderboard"),
    "theta": ("pipeline.cmd_theta", "Panini-Net Table 4: prior usage ratio theta per ladder level"),
    "report": ("pipeline.cmd_report", "leaderboard, paper tables and plots from results"),
    "compare": ("pipeline.cmd_compare", "regression check of metrics against an earlier commit"),
    "profile": ("pipeline.cmd_profile", "switch params.yaml between the builtin and paper profiles"),
    "import": ("pipeline.cmd_import", "import a released checkpoint (GPEN, pSp, StyleGAN2, ...)"),
}


def _module_for(cmd: str):
    mod_name, _ = COMMANDS[cmd]
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name == mod_name:
            raise FRBenchError(f"'frbench {cmd}' is not available in this version") from None
        raise


def _flag_value(argv: list[str], flag: str):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def setup_numerics(argv: list[str]) -> bool:
    """Pin CPU numerics (core/numerics.py) before anything imports numpy/torch: the switch comes
    from FRBENCH_NUMERICS or the command's params file (``--params``, default params.yaml);
    ``--device cuda`` (or params ``device``) turns it off."""
    from core import numerics
    return numerics.setup(_flag_value(argv, "--params") or "params.yaml",
                          _flag_value(argv, "--device"))


def pin_numerics(argv: list[str]) -> int | None:
    """``setup_numerics`` for a process's entry point: None when pinned (or off), else the exit
    status 2 after printing the error (a bad ``numerics:`` value or params file)."""
    try:
        setup_numerics(argv)
    except FRBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return None


DESCRIPTION = ("frbench: a reproducible benchmark of GAN-prior blind face restoration.\n"
               "Seeded degraded test sets, Panini-Net/GPEN/GFP-GAN/pSp on one StyleGAN2 prior,\n"
               "one evaluator under named protocols, a DVC pipeline with reports and MLflow.")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version
    try:
        return dist_version("frbench")
    except PackageNotFoundError:
        from pipeline import __version__
        return __version__


def _names_epilog() -> str:
    """Degradation presets, metrics and protocols (imported only when help is printed)."""
    from degradations.presets import PRESETS
    from metrics import METRICS
    from metrics.protocols import PROTOCOLS
    return (f"degradation presets (degrade --preset): {', '.join(PRESETS)}\n"
            f"metrics (evaluate --metrics): {', '.join(METRICS)}\n"
            f"protocols (evaluate --protocol): {', '.join(PROTOCOLS)}\n"
            "Run `frbench COMMAND --help` for a command's options.")


def main(argv: list[str] | None = None) -> int:
    """``frbench``. From the command line (``argv`` None: console script, ``python -m``,
    torchrun) numerics are pinned first; callers passing ``argv`` (tests) keep their process's."""
    from_cli = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if from_cli and (rc := pin_numerics(argv)) is not None:
        return rc
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    top_help = not argv or argv[0] in ("-h", "--help")
    parser = argparse.ArgumentParser(prog="frbench", description=DESCRIPTION,
                                     epilog=_names_epilog() if top_help else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"frbench {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    # Parse the command name first, then let its module define the rest.
    head, rest = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    if head.command is None:
        parser.print_help()
        return 0 if not argv else 2
    logging.basicConfig(level=logging.DEBUG if head.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        mod = _module_for(head.command)
        p = argparse.ArgumentParser(prog=f"frbench {head.command}",
                                    description=COMMANDS[head.command][1])
        mod.add_arguments(p) if head.command != "testsets" else mod.add_testsets_arguments(p)
        args = p.parse_args(argv[1:])
        args.command = head.command
        runner = mod.run if head.command != "testsets" else mod.run_testsets
        rc = runner(args)
        return int(rc or 0)
    except FRBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
