"""``frbench submit``: put a folder of restored images from your own code on the leaderboard.

``frbench submit --name NAME --set SET --restored DIR`` pairs DIR with the test set's GT (the
evaluator's rule: same file names, a trailing ``_NN`` allowed, restored at GT size; a folder that
does not pair is refused with the evaluator's message), hashes every file and records it in
``submissions.yaml`` (``pipeline/submissions.py``). The next ``dvc repro`` scores it under
``evaluate.protocol`` (stage ``submission@NAME-SET``) and ranks it beside the suite's methods,
with provenance ``external:sha256:<folder hash>``. ``frbench submit --remove --name NAME
[--set SET]`` drops the record. DIR is only read, never written.
"""
from __future__ import annotations

import logging
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)
_MANAGED = ("restored", "results", "data", "checkpoints", "cache", "reports")


def add_arguments(p):
    p.add_argument("--name", required=True,
                   help="name of your method on the leaderboard (letters, digits, _)")
    p.add_argument("--set", dest="testset", default=None,
                   help="test set of params.yaml the folder restores (testsets.sets key)")
    p.add_argument("--restored", default=None,
                   help="folder of restored images, one per GT image of the set, same names")
    p.add_argument("--remove", action="store_true",
                   help="drop the submission NAME (on --set only, or on every set)")
    p.add_argument("--params", default="params.yaml",
                   help="params file (default params.yaml); submissions.yaml lies beside it")


def run(args) -> int:
    from pipeline import submissions as S
    from pipeline.config import load_params

    if args.remove:
        if args.restored:
            raise FRBenchError("frbench submit --remove: takes --name (and --set), not --restored")
        gone = S.remove(args.params, args.name, args.testset)
        print(f"removed {', '.join(gone)} from {S.submissions_path(args.params)}; the next "
              "`dvc repro` drops it from the report (its restored/ and results/ folders stay)")
        return 0
    if not args.testset or not args.restored:
        raise FRBenchError("frbench submit: give --set SET and --restored DIR (or --remove)")
    root = Path(args.params).resolve().parent
    folder = Path(args.restored).resolve()
    for sub in _MANAGED:
        if folder == root / sub or (root / sub) in folder.parents:
            raise FRBenchError(f"{args.restored}: inside {sub}/, which the pipeline rewrites; "
                               "copy the images to a folder of your own and submit that")
    params = load_params(args.params)
    sub = S.add(params, args.params, args.name, args.testset, args.restored, root)
    print(f"recorded {sub.key}: {sub.n_files} files from {sub.restored}, {sub.provenance} "
          f"in {S.submissions_path(args.params)}; run `dvc repro` to score and rank it")
    return 0
