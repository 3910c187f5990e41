#!/usr/bin/env python
"""Mutation testing for frbench: how many small deliberate bugs do the tests catch?

    python scripts/mutation.py                 # = make mutation (seeded sample, ~250 mutants)
    python scripts/mutation.py --list          # enumerate the sample, run nothing
    python scripts/mutation.py --only ID ...   # rerun some mutants (ids as printed)
    python scripts/mutation.py --src DIR       # mutate another checkout (e.g. an older commit)
    python scripts/mutation.py --resume --retry-survivors   # rerun the survivors of --json

A small AST-based runner (no plugin, no rewriting of the installed package):

1. **Mutants.** Every ``.py`` file under the targets (``metrics/``, ``degradations/``,
   ``core/seeding.py``) is parsed with ``ast``; each mutant changes one node: a comparison operator
   (``<``/``<=``, ``==``/``!=``, ``in``/``not in``, ``is``/``is not``), an arithmetic or bitwise
   operator (``+``/``-``, ``*``/``/``, ``//`` -> ``/``, ``**`` -> ``*``, ...; also in ``+=``), a
   number (``n`` -> ``n + 1``; a float ``x`` -> ``x + 1`` or ``2x``), ``True``/``False``,
   ``and``/``or``, a dropped ``not`` or unary minus, a negated ``if``/``while``/conditional
   expression test, the first two positional arguments of a call swapped, or a call statement
   removed (-> ``pass``). Not mutated: docstrings, strings and f-strings, annotations, logging
   calls, lines marked ``# pragma: no mutate``. A mutant's id hashes its file, enclosing
   function, operator and source text, so it survives edits elsewhere in the file.
2. **Sample.** A mutant is in the sample when ``sha256(seed, id)`` falls below ``--fraction``:
   membership is decided per mutant, so two versions of the code (before/after a change) share
   the sample of the mutants they have in common.
3. **Which tests.** The test pool (``--tests``: the metrics, degradations, test-set, synthetic
   face and pinned-hash tests, ``not slow``) runs once on the unmutated copy under a line tracer
   that records which test executes which line of the targets (and how long each test takes).
   A mutant runs only the tests that execute one of its lines, themselves or while a shared
   (module/session) fixture they use is set up (module-level code: every test that executes
   code of the file, or of its package when the file is only data), fastest first, with ``-x``; a mutant no test executes survives without a
   run ("no coverage").
4. **Run.** The tree is copied once to a temporary folder; per mutant the one file is rewritten,
   a child process forked from a parent that has already imported torch/numpy/... runs pytest
   in the copy (no bytecode is written, so the edited file is always recompiled), and the file
   is restored. Killed = a test failed or errored (or the run exceeded its timeout); survived
   = all selected tests passed.

Prints ``mutation score: killed/total`` and every survivor (id, place, the change). Results go
to ``--json`` (one JSON line per mutant; ``--resume`` skips mutants already there). Not part of
CI: one run of the default sample takes tens of minutes on 2 cores. docs/mutation.md has the
before/after scores and the triage of the survivors.
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGETS = ("metrics", "degradations", "core/seeding.py")
DEFAULT_TESTS = ("tests/test_metrics*.py", "tests/test_degradations*.py", "tests/test_testsets.py",
                 "tests/test_synthfaces.py", "tests/test_pinned*.py")
DEFAULT_SEED = 17
DEFAULT_FRACTION = 0.05
DEFAULT_FULL = ("core/seeding.py",)  # small files whose every mutant is in the sample
PRELOAD = ("numpy", "scipy.linalg", "scipy.ndimage", "cv2", "PIL.Image", "torch", "torchvision",
           "skimage.metrics", "lpips", "pytorch_fid.inception", "facenet_pytorch", "pytorch_msssim",
           "yaml", "tqdm", "pytest", "pandas")
NO_SWAP_CALLS = {"isinstance", "issubclass", "getattr", "setattr", "hasattr", "max", "min",
                 "maximum", "minimum", "print", "super"}
LOG_NAMES = {"log", "logger", "logging", "warnings"}


# ------------------------------------------------------------------------------ enumeration

@dataclass
class Mutant:
    id: str
    file: str
    line: int
    end_line: int
    op: str
    scope: str
    before: str
    after: str
    module_level: bool
    start: tuple = field(repr=False, default=(0, 0))
    end: tuple = field(repr=False, default=(0, 0))
    statement: bool = False

    def describe(self) -> str:
        return f"{self.file}:{self.line} [{self.op}] {self.before!r} -> {self.after!r}"


_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
        ast.NotIn: ast.In}
_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
        ast.FloorDiv: ast.Div, ast.Mod: ast.Mult, ast.Pow: ast.Mult, ast.LShift: ast.RShift,
        ast.RShift: ast.LShift, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
        ast.BitXor: ast.BitOr}


def _unparse(node) -> str:
    return ast.unparse(node).replace("\n", " ")


def _is_log_call(node) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    while isinstance(f, ast.Attribute):
        if isinstance(f.value, ast.Name) and f.value.id in LOG_NAMES:
            return True
        f = f.value
    return False


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


class _Enumerator(ast.NodeVisitor):
    def __init__(self, rel: str, lines: list[str]):
        self.rel, self.lines = rel, lines
        self.scope: list[str] = []
        self.in_def_args = 0
        self.out: list[Mutant] = []
        self._seen: dict[tuple, int] = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def _skip_line(self, node) -> bool:
        return any("pragma: no mutate" in self.lines[i - 1]
                   for i in range(node.lineno, getattr(node, "end_lineno", node.lineno) + 1))

    def _add(self, node, op: str, new_node, statement: bool = False):
        if self._skip_line(node):
            return
        before = _unparse(node)
        after = _unparse(new_node) if not isinstance(new_node, str) else new_node
        if before == after:
            return
        scope = ".".join(self.scope) or "<module>"
        key = (self.rel, scope, op, before, after)
        k = self._seen.get(key, 0)
        self._seen[key] = k + 1
        mid = hashlib.sha256(repr(key + (k,)).encode()).hexdigest()[:10]
        self.out.append(Mutant(
            id=mid, file=self.rel, line=node.lineno, end_line=node.end_lineno, op=op, scope=scope,
            before=before, after=after,
            module_level=not self.scope or self.in_def_args > 0 or
            all(s[:1].isupper() for s in self.scope),
            start=(node.lineno, node.col_offset), end=(node.end_lineno, node.end_col_offset),
            statement=statement))

    def _with_scope(self, name, node):
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    # -- skipped subtrees --------------------------------------------------------------------
    def visit_JoinedStr(self, node):
        return

    def visit_FunctionDef(self, node):
        for d in node.decorator_list:
            self.visit(d)
        self.in_def_args += 1
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        self.in_def_args -= 1
        self.scope.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for d in node.decorator_list + node.bases:
            self.visit(d)
        self._with_scope(node.name, ast.Module(body=node.body, type_ignores=[]))

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)

    def visit_Expr(self, node):
        v = node.value
        if isinstance(v, ast.Constant):  # docstrings
            return
        if _is_log_call(v):
            return
        if isinstance(v, ast.Call):
            self._add(node, "remove-call", "pass", statement=True)
        self.generic_visit(node)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool):
            self._add(node, "bool", ast.Constant(not v))
        elif isinstance(v, int):
            self._add(node, "number", ast.Constant(v + 1))
        elif isinstance(v, float):
            nv = v + 1.0 if (abs(v) >= 1 or v == 0) else v * 2
            self._add(node, "number", ast.Constant(nv))

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            if type(op) in _CMP:
                n = copy.deepcopy(node)
                n.ops[i] = _CMP[type(op)]()
                self._add(node, "compare", n)
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if type(node.op) in _BIN:
            n = copy.deepcopy(node)
            n.op = _BIN[type(node.op)]()
            self._add(node, "arith", n)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        if type(node.op) in _BIN:
            n = copy.deepcopy(node)
            n.op = _BIN[type(node.op)]()
            self._add(node, "arith", n, statement=True)
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        n = copy.deepcopy(node)
        n.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "boolop", n)
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
            self._add(node, "unary", copy.deepcopy(node.operand))
        self.generic_visit(node)

    def _negate_test(self, node):
        t = node.test
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
            return  # dropping that ``not`` is already a mutant
        self._add(t, "negate", ast.UnaryOp(ast.Not(), copy.deepcopy(t)))

    def visit_If(self, node):
        self._negate_test(node)
        self.generic_visit(node)

    visit_While = visit_If
    visit_IfExp = visit_If

    def visit_Assert(self, node):
        return

    def visit_Call(self, node):
        if _is_log_call(node):
            return
        pos = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(pos) >= 2 and len(pos) == len(node.args) and _call_name(node) not in NO_SWAP_CALLS:
            n = copy.deepcopy(node)
            n.args[0], n.args[1] = n.args[1], n.args[0]
            self._add(node, "swap-args", n)
        self.generic_visit(node)


def target_files(src: Path, targets) -> list[Path]:
    files = []
    for t in targets:
        p = src / t
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.is_file() else []
    return [f for f in files if "__pycache__" not in f.parts]


def enumerate_mutants(src: Path, targets) -> list[Mutant]:
    out = []
    for f in target_files(src, targets):
        text = f.read_text(encoding="utf-8")
        e = _Enumerator(f.relative_to(src).as_posix(), text.splitlines())
        e.visit(ast.parse(text))
        out += e.out
    return out


def in_sample(m: Mutant, seed: int, fraction: float) -> bool:
    h = hashlib.sha256(f"{seed}:{m.id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64 < fraction


def apply_mutant(text: str, m: Mutant) -> str:
    """Source with the node of ``m`` replaced (ast offsets are UTF-8 byte columns)."""
    lines = text.encode("utf-8").splitlines(keepends=True)
    (l0, c0), (l1, c1) = m.start, m.end
    head = b"".join(lines[:l0 - 1]) + lines[l0 - 1][:c0]
    tail = lines[l1 - 1][c1:] + b"".join(lines[l1:])
    new = m.after if m.statement else f"({m.after})"
    out = (head + new.encode("utf-8") + tail).decode("utf-8")
    compile(out, m.file, "exec")
    return out


# ---------------------------------------------------------------------------- test coverage

def _fixture_key(fixturedef) -> str:
    return f"fixture:{fixturedef.baseid}::{fixturedef.argname}"


class LineTracer:
    """pytest plugin: which test executes which line of the target files (+ test durations)."""

    def __init__(self, files: set[str]):
        self.files = files
        self.current = "<import>"
        self.hits: dict[str, set] = {}
        self.duration: dict[str, float] = {}
        self.failed: set[str] = set()
        self.uses: dict[str, list[str]] = {}

    def _local(self, frame, event, arg):
        if event == "line":
            self.hits.setdefault(self.current, set()).add(
                (frame.f_code.co_filename, frame.f_lineno))
        return self._local

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename not in self.files:
            return None
        self.hits.setdefault(self.current, set()).add((frame.f_code.co_filename, frame.f_lineno))
        return self._local

    def pytest_sessionstart(self, session):
        sys.settrace(self._global)

    def pytest_sessionfinish(self, session):
        sys.settrace(None)

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = nodeid

    def pytest_runtest_setup(self, item):
        # the shared (module/class/session) fixtures this test uses: lines run while one of
        # them is set up belong to every test that uses it, not just the first
        self.uses[item.nodeid] = sorted(
            _fixture_key(defs[-1]) for defs in item._fixtureinfo.name2fixturedefs.values()
            if defs and defs[-1].scope != "function")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if fixturedef.scope == "function":
            yield
            return
        prev, self.current = self.current, _fixture_key(fixturedef)
        try:
            yield
        finally:
            self.current = prev

    def pytest_runtest_logfinish(self, nodeid, location):
        self.current = "<import>"

    def pytest_runtest_logreport(self, report):
        self.duration[report.nodeid] = self.duration.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.add(report.nodeid)


def _pytest_args(tests, extra=()):
    return [*tests, "-q", "-p", "no:cacheprovider", "-m", "not slow", "--no-header",
            "-o", "addopts=--strict-markers", "-W", "ignore", *extra]


def _fork(fn, timeout: float, log_path: Path):
    """Run ``fn()`` (-> int) in a forked child with stdout/stderr to ``log_path``; -> (rc, secs).
    rc None = timed out (child killed)."""
    t0 = time.time()
    pid = os.fork()
    _CHILDREN.add(pid)
    if pid == 0:  # child
        rc = 3
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.setpgid(0, 0)
            rc = int(fn())
        except BaseException as e:  # noqa: BLE001
            try:
                print(f"runner error: {e!r}", flush=True)
            except Exception:
                pass
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), time.time() - t0
            if time.time() - t0 > timeout:
                _kill(pid)
                return None, time.time() - t0
            time.sleep(0.05)
    finally:
        _CHILDREN.discard(pid)


_CHILDREN: set[int] = set()


def _kill(pid: int) -> None:
    """Kill a child's process group (pytest and any worker it spawned) and reap it."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


def _child_env(tree: Path):
    os.chdir(tree)
    sys.path.insert(0, str(tree))
    os.environ["PYTHONPATH"] = str(tree)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True


def trace_tests(tree: Path, tests: list[str], files: list[Path], work: Path, timeout: float):
    """Run the pool once under ``LineTracer`` (in a child); -> {test: {"lines": [...], "secs"}}."""
    out = work / "coverage.json"

    def child():
        import pytest
        _child_env(tree)
        tr = LineTracer({str(f) for f in files})
        rc = pytest.main(_pytest_args(tests), plugins=[tr])
        data = {t: {"lines": sorted([Path(f).relative_to(tree).as_posix(), ln] for f, ln in hits),
                    "secs": tr.duration.get(t, 0.0), "failed": t in tr.failed}
                for t, hits in tr.hits.items()}
        for t, secs in tr.duration.items():
            data.setdefault(t, {"lines": [], "secs": secs, "failed": t in tr.failed})
        for t, uses in tr.uses.items():
            data.setdefault(t, {"lines": [], "secs": 0.0, "failed": False})["uses"] = uses
        out.write_text(json.dumps(data))
        return rc

    rc, secs = _fork(child, timeout, work / "trace.log")
    if rc is None or not out.is_file():
        sys.exit(f"the traced test run failed (rc={rc}); see {work / 'trace.log'}")
    data = json.loads(out.read_text())
    if not any(t != "<import>" and not t.startswith("fixture:") for t in data):
        tail = (work / "trace.log").read_text(errors="replace").splitlines()[-30:]
        sys.exit("the traced test run collected no test:\n" + "\n".join(tail))
    bad = sorted(t for t, d in data.items() if d["failed"])
    if bad:
        print(f"warning: {len(bad)} pool test(s) fail on the unmutated code and are not used: "
              f"{', '.join(bad[:5])}", flush=True)
    print(f"traced {sum(1 for t in data if t != '<import>')} tests in {secs:.0f} s", flush=True)
    return data


def select_tests(m: Mutant, cov: dict) -> list[str]:
    """The tests that run a line of ``m`` themselves or in a shared fixture they use."""
    usable = {t: d for t, d in cov.items() if t != "<import>" and not t.startswith("fixture:")
              and not d["failed"]}
    fixtures = {t: d for t, d in cov.items() if t.startswith("fixture:")}

    def hit(pred):
        tests = {t for t, d in usable.items() if any(pred(f, ln) for f, ln in d["lines"])}
        fx = {k for k, d in fixtures.items() if any(pred(f, ln) for f, ln in d["lines"])}
        return tests | {t for t, d in usable.items() if fx & set(d.get("uses", ()))}

    span = set(range(m.line, m.end_line + 1))
    chosen = hit(lambda f, ln: f == m.file and ln in span)
    imported = any(f == m.file and ln in span for f, ln in cov.get("<import>", {}).get("lines", []))
    if m.module_level or (imported and not chosen):
        # module-level code (constants, tables, defaults) runs at import: every test that uses
        # the file, or, when its code is only data read elsewhere, that uses its package
        chosen = hit(lambda f, ln: f == m.file)
        if not chosen:
            pkg = m.file.rsplit("/", 1)[0] + "/"
            chosen = hit(lambda f, ln: f.startswith(pkg))
    return sorted(chosen, key=lambda t: (usable[t]["secs"], t))


# ------------------------------------------------------------------------------------- main

def copy_tree(src: Path, dst: Path) -> None:
    top = {".git", ".venv", ".pytest_cache", "data", "checkpoints", "restored", "results", "cache",
           "mlruns", ".dvc", "reports", ".mutation", "node_modules"}  # outputs, at the root only

    def ignore(d, names):
        return {n for n in names if n == "__pycache__" or (Path(d) == src and n in top)}
    shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    photos = src / "cache" / "test-photos"  # real portraits some metric tests need (not in git)
    if photos.is_dir():
        shutil.copytree(photos, dst / "cache" / "test-photos", symlinks=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=str(ROOT), help="checkout to mutate (default: this one)")
    ap.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    ap.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS),
                    help="test files (globs, relative to --src) the mutants may run")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--fraction", type=float, default=DEFAULT_FRACTION,
                    help="share of the mutants in the sample (per-mutant hash threshold)")
    ap.add_argument("--full", nargs="*", default=list(DEFAULT_FULL),
                    help="files whose every mutant is in the sample")
    ap.add_argument("--only", nargs="+", default=None, help="mutant ids to run (ignores the sample)")
    ap.add_argument("--list", action="store_true", help="print the sample and exit")
    ap.add_argument("--json", default=".mutation/results.jsonl", help="per-mutant results")
    ap.add_argument("--resume", action="store_true", help="skip mutants already in --json")
    ap.add_argument("--retry-survivors", action="store_true",
                    help="with --resume: run the survivors in --json again (e.g. after adding "
                         "tests); killed mutants stay killed")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per mutant (default: 60 + 5x the traced time of its tests)")
    args = ap.parse_args(argv)

    src = Path(args.src).resolve()
    allm = enumerate_mutants(src, args.targets)
    if args.only:
        sample = [m for m in allm if m.id in set(args.only)]
    else:
        sample = [m for m in allm
                  if m.file in args.full or in_sample(m, args.seed, args.fraction)]
    ok = []
    for m in sample:
        try:
            apply_mutant((src / m.file).read_text(encoding="utf-8"), m)
            ok.append(m)
        except SyntaxError:
            pass
    sample = ok
    print(f"{len(allm)} mutants in {', '.join(args.targets)}; sample {len(sample)} "
          f"(seed {args.seed}, fraction {args.fraction})", flush=True)
    if args.list:
        for m in sample:
            print(f"{m.id}  {m.describe()}")
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    for mod in PRELOAD:  # imported once here, inherited by every forked child
        try:
            __import__(mod)
        except Exception:
            pass
    json_path = Path(args.json)
    if not json_path.is_absolute():
        json_path = ROOT / json_path
    json_path.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    if args.resume and json_path.is_file():
        for line in json_path.read_text().splitlines():
            r = json.loads(line)
            if not (args.retry_survivors and r["status"] == "survived"):
                done[r["id"]] = r
        json_path.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    elif json_path.exists():
        json_path.unlink()

    signal.signal(signal.SIGTERM, _on_term)
    work = Path(tempfile.mkdtemp(prefix="frbench-mutation-")).resolve()
    try:
        tree = work / "tree"
        copy_tree(src, tree)
        tests = sorted({p.relative_to(tree).as_posix() for g in args.tests for p in tree.glob(g)})
        files = target_files(tree, args.targets)
        t_all = time.time()
        cov = trace_tests(tree, tests, files, work, timeout=3600)
        results = [done[m.id] for m in sample if m.id in done]
        todo = [m for m in sample if m.id not in done]
        for i, m in enumerate(todo, 1):
            chosen = select_tests(m, cov)
            rec = {**{k: v for k, v in asdict(m).items() if k not in ("start", "end")},
                   "tests": len(chosen)}
            if not chosen:
                rec.update(status="survived", reason="no coverage", secs=0.0)
            else:
                path = tree / m.file
                orig = path.read_text(encoding="utf-8")
                path.write_text(apply_mutant(orig, m), encoding="utf-8")
                timeout = args.timeout or 60 + 5 * sum(cov[t]["secs"] for t in chosen)

                def child(chosen=chosen):
                    import pytest
                    _child_env(tree)
                    return pytest.main(_pytest_args(chosen, ["-x"]))

                try:
                    rc, secs = _fork(child, timeout, work / "run.log")
                finally:
                    path.write_text(orig, encoding="utf-8")
                if rc is None:
                    rec.update(status="killed", reason="timeout", secs=secs)
                elif rc == 0:
                    rec.update(status="survived", reason="tests pass", secs=secs)
                else:
                    tail = (work / "run.log").read_text(errors="replace").strip().splitlines()
                    failed = [ln for ln in tail if ln.startswith(("FAILED", "ERROR"))]
                    rec.update(status="killed", reason=(failed[0] if failed else f"rc={rc}")[:200],
                               secs=secs)
            results.append(rec)
            with json_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"[{i}/{len(todo)}] {rec['status']:8s} {rec['secs']:6.1f}s  {m.id}  "
                  f"{m.describe()}  ({rec['tests']} tests)", flush=True)
        killed = sum(r["status"] == "killed" for r in results)
        surv = [r for r in results if r["status"] == "survived"]
        print(f"\nsurvivors ({len(surv)}):")
        for r in sorted(surv, key=lambda r: (r["file"], r["line"])):
            print(f"  {r['id']}  {r['file']}:{r['line']} [{r['op']}] {r['before']!r} -> "
                  f"{r['after']!r}  ({r['reason']})")
        print(f"\nmutation score: {killed}/{len(results)}"
              f" ({100.0 * killed / max(1, len(results)):.1f}%), {time.time() - t_all:.0f} s")
    finally:
        for pid in list(_CHILDREN):  # interrupted: no orphaned pytest keeps running
            _kill(pid)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
