"""Mutation check: does the test suite catch deliberate faults?

    python -m tools.mutation_check                      every fault, the whole suite
    python -m tools.mutation_check --list               the faults
    python -m tools.mutation_check --only adam_no_bias_correction --only tanh_grad_sign
    python -m tools.mutation_check --tests tests/test_parity_optim.py

Run from the repository root. The git-tracked files of this tree (as they are
in the working tree) are copied once to a temporary folder; this tree itself
is never modified, built or tested. Each fault of FAULTS is then applied alone,
to a copy of that snapshot, by an exact text replacement whose old text must
occur exactly once in its file (anything else stops the check, so the list
cannot silently go stale). A fault in a C or Cython file is built from scratch
(`python setup.py build_ext --inplace`); a fault in Python code reuses the
extensions built once for the unmodified snapshot. The suite then runs in the
copy (`python -m pytest -x -q -p no:cacheprovider`, with the copy as working
folder and PYTHONPATH), and a small pytest plugin records which fastnn the
tests imported: a run that imported any other copy counts as an error.

Each fault is reported as caught (pytest exit status 1: a test failed), MISSED
(exit status 0: every test passed) or error (the build failed, the suite could
not run, or it timed out). The unmodified snapshot runs first (--no-baseline
skips it): if it fails, no result would mean anything. One build or test run
at a time. The exit status is 1 when a fault was missed, 2 on an error, 0 when
every fault was caught.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

Fault = namedtuple("Fault", "name path old new description")

# Each fault replaces `old` (which must occur exactly once in `path`) by `new`.
FAULTS = [
    Fault("sumsq_tail_short", "src_c/regularize.inc.c",
          "            for (; i < i1; i++) acc[0] += (double)x[i] * (double)x[i];",
          "            for (; i < i1 - 1; i++) acc[0] += (double)x[i] * (double)x[i];",
          "sum of squares: the tail loop after the 8-wide blocks stops one element short "
          "(norms, clipping, the L2 term)"),
    Fault("tanh_grad_sign", "src_c/act_rows.inc.c",
          "        for (j = 0; j < n; j++) dz[j] = da[j] * ((REAL)1 - a[j] * a[j]);",
          "        for (j = 0; j < n; j++) dz[j] = da[j] * (a[j] * a[j] - (REAL)1);",
          "tanh backward: dZ = dA (A^2 - 1), the sign of g'(Z) flipped"),
    Fault("adam_no_bias_correction", "src_c/optim.inc.c",
          "    k.step = (REAL)(lr / (1.0 - pow(beta1, (double)t)));",
          "    k.step = (REAL)lr;",
          "Adam: the first moment is not bias-corrected (step lr instead of lr / (1 - b1^t))"),
    Fault("clip_norm_skipped", "src_c/train.inc.c",
          "        if (net->clip_norm > 0 && sqrt(gsq) > net->clip_norm)",
          "        if (0 && net->clip_norm > 0 && sqrt(gsq) > net->clip_norm)",
          "C training loop: clip_norm never scales the gradients"),
    Fault("rmsprop_eps_inside_sqrt", "src_c/update_ranges.inc.c",
          "        p[i] = p[i] - lr * (g[i] / (R_SQRT(si) + eps));",
          "        p[i] = p[i] - lr * (g[i] / R_SQRT(si + eps));",
          "RMSProp: g / sqrt(s + eps) instead of g / (sqrt(s) + eps)"),
    # the anchor is the first line of check_no_overlap's body
    Fault("overlap_check_noop", "fastnn/_validation.py",
          "    writes = [(n, a) for n, a in writes if isinstance(a, np.ndarray)]\n",
          "    return\n    writes = [(n, a) for n, a in writes if isinstance(a, np.ndarray)]\n",
          "check_no_overlap, the shared check of written buffers against read ones, "
          "returns at once"),
    Fault("xent_grad_no_inv_m", "src_c/loss.inc.c",
          "            dzi[j] = (REAL)((p * ysum - yj) * g->inv_m);",
          "            dzi[j] = (REAL)(p * ysum - yj);",
          "softmax cross-entropy: dZ = P - Y, the 1/m of the batch mean dropped"),
    Fault("dense_bias_dropped", "src_c/gemm.inc.c",
          "                const REAL *bias = (!add && g->bias) ? g->bias + j : NULL;",
          "                const REAL *bias = NULL;",
          "packed GEMM epilogue: the dense layer's bias is never added"),
    Fault("l2_missing_from_dw", "src_c/dense.inc.c",
          "    if (l2 != 0.0) {",
          "    if (0 && l2 != 0.0) {",
          "dense backward: dW = X^T dZ without the l2 W term"),
    Fault("dropout_scale_one", "src_c/regularize.inc.c",
          "    const REAL scale = (REAL)(1.0 / q);",
          "    const REAL scale = (REAL)1;",
          "inverted dropout: kept units scaled by 1 instead of 1 / (1 - rate)"),
    Fault("momentum_beta_ignored", "src_c/update_ranges.inc.c",
          "        REAL vi = b * v[i] + one_minus_b * g[i];",
          "        REAL vi = v[i] + one_minus_b * g[i];",
          "momentum: V <- V + (1 - beta) dW, beta never applied to the velocity"),
    Fault("softmax_no_max_shift", "src_c/act_rows.inc.c",
          "        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_exp)(z[j] - zmax);",
          "        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_exp)(z[j]);",
          "softmax forward: exp(z) without subtracting the row maximum"),
    Fault("early_stopping_patience_plus_one", "fastnn/callbacks.py",
          "        if self.wait >= max(self.patience, 1):",
          "        if self.wait > max(self.patience, 1):",
          "EarlyStopping waits one epoch more than its patience"),
    Fault("lr_schedule_ignored", "fastnn/trainer.py",
          "optimizer.lr(np.arange(first_step, first_step + n_steps),",
          "optimizer.lr(np.zeros(n_steps),",
          "fit: every step gets the schedule's rate of step 0"),
]

# a change to one of these needs the extensions rebuilt
BUILD_SUFFIXES = (".c", ".h", ".pyx", ".pxd", ".pxi")
BUILD_FILES = ("setup.py", "pyproject.toml")

GUARD_MODULE = "_fastnn_mutation_guard"
GUARD_SOURCE = '''\
"""Records which fastnn the tests imported (tools/mutation_check.py)."""
import json
import os
import sys


def pytest_unconfigure(config):
    names = ("fastnn", "fastnn._kernels", "fastnn._openmp")
    files = {name: getattr(sys.modules.get(name), "__file__", None) for name in names}
    with open(os.environ["FASTNN_MUTATION_IMPORTS"], "w") as f:
        json.dump(files, f)
'''

Result = namedtuple("Result", "status detail seconds")


def needs_build(fault):
    return fault.path.endswith(BUILD_SUFFIXES) or fault.path in BUILD_FILES


def kind(fault):
    return "C/Cython" if needs_build(fault) else "Python"


def check_faults(faults, root):
    """Every fault's old text occurs exactly once in its file under root, and
    the new text differs; returns a list of problems."""
    problems, names = [], set()
    for f in faults:
        if f.name in names:
            problems.append("%s: duplicate name" % f.name)
        names.add(f.name)
        path = root / f.path
        if not path.is_file():
            problems.append("%s: %s does not exist" % (f.name, f.path))
            continue
        count = path.read_text().count(f.old)
        if count != 1:
            problems.append("%s: the old text occurs %d times in %s (must be exactly once): %r"
                            % (f.name, count, f.path, f.old))
        if f.old == f.new:
            problems.append("%s: the new text equals the old" % f.name)
    return problems


def apply_fault(fault, tree):
    path = tree / fault.path
    text = path.read_text()
    count = text.count(fault.old)
    if count != 1:  # check_faults ran on the snapshot: this cannot happen
        raise RuntimeError("%s: the old text occurs %d times in %s (must be exactly once)"
                           % (fault.name, count, fault.path))
    path.write_text(text.replace(fault.old, fault.new, 1))


def tracked_files(root):
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and (root / p).is_file()]


def copy_files(root, files, dest):
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def _env(tree, guard_dir, imports_file=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(guard_dir)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONSTARTUP", None)
    if imports_file is not None:
        env["FASTNN_MUTATION_IMPORTS"] = str(imports_file)
    return env


def _run(cmd, cwd, env, log, timeout=None):
    """Runs cmd with its output in log; returns the exit status, or None on timeout
    (the whole process group is then killed)."""
    with open(log, "w") as f:
        # its own process group, so a timeout kills the whole tree
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                preexec_fn=os.setsid)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def _tail(log, n=20):
    lines = Path(log).read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


def build(tree, guard_dir, log):
    """Builds the extensions in place in tree; None when it worked, else a reason."""
    rc = _run([sys.executable, "setup.py", "build_ext", "--inplace"], tree,
              _env(tree, guard_dir), log)
    if rc != 0:
        return "build failed (exit %s), see %s" % (rc, log)
    return None


def _under(path, tree):
    return path is not None and Path(path).resolve().is_relative_to(tree.resolve())


def check_import(tree, guard_dir, log):
    """fastnn imports from tree in the environment the tests get; None or a reason."""
    code = ("import json, fastnn, fastnn._kernels, fastnn._openmp; print(json.dumps("
            "[fastnn.__file__, fastnn._kernels.__file__, fastnn._openmp.__file__]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tree, env=_env(tree, guard_dir),
                          capture_output=True, text=True)
    Path(log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return "fastnn does not import, see %s" % log
    files = json.loads(proc.stdout.strip().splitlines()[-1])
    wrong = [f for f in files if not _under(f, tree)]
    if wrong:
        return "fastnn imports from %s, not from the copy %s" % (wrong, tree)
    return None


def _first_failure(log):
    for line in Path(log).read_text(errors="replace").splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ", 1)[0]
    return ""


def run_tests(tree, guard_dir, tests, log, timeout):
    """(status, detail): caught, MISSED or error."""
    imports = Path(str(log) + ".imports.json")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", GUARD_MODULE] + list(tests)
    rc = _run(cmd, tree, _env(tree, guard_dir, imports), log, timeout)
    if rc is None:
        return "error", "timed out after %d s, see %s" % (timeout, log)
    try:
        files = json.loads(imports.read_text())
    except (OSError, ValueError):
        files = None
    if rc in (0, 1):
        if not files or not all(_under(f, tree) for f in files.values()):
            return "error", "the tests imported %s, not the copy %s" % (files, tree)
    if rc == 1:
        return "caught", _first_failure(log)
    if rc == 0:
        return "MISSED", "every test passed"
    return "error", "pytest exit status %d, see %s" % (rc, log)


def _table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join("%-*s" % (w, c) for w, c in zip(widths, r)))
    return "\n".join(out)


def list_faults(faults):
    rows = [(f.name, f.path, kind(f), f.description) for f in faults]
    print(_table(rows, ("fault", "file", "kind", "what it does")))


def select(names):
    if not names:
        return list(FAULTS)
    wanted = [n.strip() for arg in names for n in arg.split(",") if n.strip()]
    known = {f.name: f for f in FAULTS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        print("unknown fault %s; the faults are: %s" % (", ".join(unknown), ", ".join(known)),
              file=sys.stderr)
        raise SystemExit(2)
    return [f for f in FAULTS if f.name in wanted]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutation_check", description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this fault (repeat, or separate names by commas)")
    parser.add_argument("--tests", nargs="+", default=[], metavar="PATH",
                        help="test files or node ids for pytest (default: the whole suite)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmodified snapshot")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one pytest run may take (default 3600)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (copies and logs)")
    args = parser.parse_args(argv)

    faults = select(args.only)
    if args.list:
        list_faults(faults)
        return 0
    root = Path(__file__).resolve().parent.parent
    problems = check_faults(faults, root)
    if problems:
        print("the fault list does not match the source:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="fastnn-mutation-"))
    logs, guard_dir, snapshot = work / "logs", work / "guard", work / "snapshot"
    logs.mkdir()
    guard_dir.mkdir()
    (guard_dir / (GUARD_MODULE + ".py")).write_text(GUARD_SOURCE)
    started = time.perf_counter()
    print("snapshot of %s in %s" % (root, work), flush=True)
    copy_files(root, tracked_files(root), snapshot)
    # the check runs on the snapshot, so the tree it was started from may change meanwhile
    problems = check_faults(faults, snapshot)
    if problems:
        print("the fault list does not match the source:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 2

    results = {}
    pristine = work / "pristine"
    status = 0
    try:
        if not args.no_baseline or not all(needs_build(f) for f in faults):
            t = time.perf_counter()
            shutil.copytree(snapshot, pristine, symlinks=True)
            print("building the unmodified snapshot ...", flush=True)
            reason = (build(pristine, guard_dir, logs / "pristine.build.txt")
                      or check_import(pristine, guard_dir, logs / "pristine.import.txt"))
            if reason:
                print("the unmodified snapshot: " + reason, file=sys.stderr)
                print(_tail(logs / "pristine.build.txt"), file=sys.stderr)
                return 2
            shutil.rmtree(pristine / "build", ignore_errors=True)
            if not args.no_baseline:
                print("testing the unmodified snapshot ...", flush=True)
                st, detail = run_tests(pristine, guard_dir, args.tests,
                                       logs / "pristine.pytest.txt", args.timeout)
                print("  unmodified: %s (%.0f s)" % ("passed" if st == "MISSED" else st,
                                                       time.perf_counter() - t), flush=True)
                if st != "MISSED":
                    print("the unmodified snapshot does not pass its tests (%s %s), so no "
                          "fault can be judged\n%s" % (st, detail,
                                                        _tail(logs / "pristine.pytest.txt")),
                          file=sys.stderr)
                    return 2

        for fault in faults:
            t = time.perf_counter()
            tree = work / ("mutant-" + fault.name)
            print("%s (%s): %s ..." % (fault.name, fault.path, fault.description), flush=True)
            if needs_build(fault):
                shutil.copytree(snapshot, tree, symlinks=True)
                apply_fault(fault, tree)
                reason = build(tree, guard_dir, logs / (fault.name + ".build.txt"))
            else:
                shutil.copytree(pristine, tree, symlinks=True)
                apply_fault(fault, tree)
                reason = None
            reason = reason or check_import(tree, guard_dir, logs / (fault.name + ".import.txt"))
            if reason:
                st, detail = "error", reason
            else:
                st, detail = run_tests(tree, guard_dir, args.tests,
                                       logs / (fault.name + ".pytest.txt"), args.timeout)
            results[fault.name] = Result(st, detail, time.perf_counter() - t)
            print("  %s: %s (%.0f s)" % (st, detail, results[fault.name].seconds), flush=True)
            if not args.keep:
                shutil.rmtree(tree, ignore_errors=True)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        rows = [(f.name, kind(f), results[f.name].status if f.name in results else "not run",
                 "%.0f" % results[f.name].seconds if f.name in results else "",
                 results[f.name].detail if f.name in results else "")
                for f in faults]
        print("\nmutation check of %s (%d faults, %.0f s)" % (
            root, len(faults), time.perf_counter() - started))
        print(_table(rows, ("fault", "kind", "result", "seconds", "first failing test / reason")))
        missed = [f for f in faults if f.name in results and results[f.name].status == "MISSED"]
        if missed:
            print("\nMISSED: the whole test run passes with these faults:")
            for f in missed:
                print("  %s (%s): %s" % (f.name, f.path, f.description))
        if not status:
            complete = all(f.name in results and results[f.name].status == "caught"
                           for f in faults)
            status = 1 if missed else 0 if complete else 2
        if args.keep:
            print("\ncopies and logs kept in %s" % work)
        elif status:
            for tree in [snapshot, pristine] + list(work.glob("mutant-*")):
                shutil.rmtree(tree, ignore_errors=True)
            print("\nlogs in %s" % logs)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
