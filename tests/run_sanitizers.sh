#!/usr/bin/env bash
# Build a private copy of fastnn with AddressSanitizer and
# UndefinedBehaviorSanitizer and run the whole test suite under it.
#
#   bash tests/run_sanitizers.sh                 # every test
#   bash tests/run_sanitizers.sh -k reliability  # extra arguments go to pytest
#
# The copy (the tracked and new, not ignored, files of this tree) is built in
# a temporary folder, so the extension built in place here is left alone.
# FASTNN_SANITIZE (default address,undefined) picks the sanitizers; Cython
# bounds checking is turned on too (FASTNN_CYTHON_DEBUG=1). Python itself is
# not instrumented: libasan is preloaded, and leak detection is off (the
# interpreter keeps its memory until exit). Every sanitizer report is written
# to a log file; the script fails if the tests fail or any report was written.
# Set FASTNN_SANITIZE_KEEP=1 to keep the temporary folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
CC=${CC:-gcc}
SANITIZE=${FASTNN_SANITIZE:-address,undefined}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-sanitize.XXXXXX")
cleanup() {
    if [ "${FASTNN_SANITIZE_KEEP:-0}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

echo "== copying the source tree to $WORK/src"
mkdir -p "$WORK/src" "$WORK/logs"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | (cd "$WORK/src" && tar -xf -)

echo "== building with -fsanitize=$SANITIZE"
cd "$WORK/src"
FASTNN_SANITIZE="$SANITIZE" FASTNN_CYTHON_DEBUG=1 CC="$CC" \
    "$PYTHON" setup.py build_ext --inplace >"$WORK/logs/build.txt" 2>&1 \
    || { tail -50 "$WORK/logs/build.txt"; exit 1; }
grep "fastnn build:" "$WORK/logs/build.txt"
case ",$SANITIZE," in
    *,address,*)  # the kernels really are instrumented
        symbols=$(nm -D fastnn/_kernels*.so)
        grep -q __asan_report_load <<<"$symbols" \
            || { echo "the extension is not instrumented"; exit 1; } ;;
esac

preload=""
case ",$SANITIZE," in
    *,address,*)
        preload=$("$CC" -print-file-name=libasan.so)
        [ -f "$preload" ] || { echo "libasan.so not found for $CC"; exit 1; }
        # C++ extensions imported later (matplotlib's) throw exceptions: ASan
        # intercepts __cxa_throw only if libstdc++ is loaded from the start
        cxx=$("$CC" -print-file-name=libstdc++.so)
        [ -f "$cxx" ] && preload="$preload:$(readlink -f "$cxx")" ;;
esac
export LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:log_path=$WORK/logs/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$WORK/logs/ubsan:${UBSAN_OPTIONS:-}"
export PYTHONDONTWRITEBYTECODE=1

"$PYTHON" -c "import fastnn, sys; assert fastnn.__file__.startswith('$WORK/src'), fastnn.__file__; \
print('testing', fastnn.__file__); print(fastnn._kernels.build_config())"

echo "== test suite under the sanitizers"
# tests/test_large_data.py limits a child's private memory (RLIMIT_DATA) to
# measure it, and ASan's shadow memory is private address space far beyond any
# such limit: that test runs in the main suite only
status=0
"$PYTHON" -m pytest tests -q -p no:cacheprovider --ignore=tests/test_large_data.py "$@" \
    || status=$?

reports=$(find "$WORK/logs" -name 'asan*' -o -name 'ubsan*')
if [ -n "$reports" ]; then
    echo "== sanitizer reports"
    for f in $reports; do echo "--- $f"; cat "$f"; done
    [ "$status" -ne 0 ] || status=1
else
    echo "== no sanitizer reports"
fi
exit "$status"
