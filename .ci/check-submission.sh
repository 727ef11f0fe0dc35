#!/usr/bin/env bash
# Check a submission against a base git ref: what a reviewer would run by hand.
#
#   .ci/check-submission.sh BASE_REF      e.g. origin/main (CI) or main (locally)
#
# Every added/modified methods/*.py       -> xprune check <file>
# Every added/modified reports/**/*.json  -> xprune verify on exactly those records (each
#                                            re-run from scratch and compared)
# Fails closed: a step passes only when its command exits 0 AND prints its explicit pass line
# ("check passed: <file>" / "...: ok"); any other ending (a crash, a kill, no output, exit 0
# without the line) is a failure. Exit 0 only when every step passed (or nothing changed).
# Environment: XPRUNE (command, default "xprune"), VERIFY_TOLERANCE (default: verify's own).
# The protocol's pinned kernels (bench/compute/kernels.py) are always used: an XPRUNE_NATIVE_KERNELS
# opt-out in the caller's environment is removed, and the pin is exported for every process.
set -u -o pipefail
unset XPRUNE_NATIVE_KERNELS
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2,STRICT

BASE="${1:?usage: .ci/check-submission.sh BASE_REF}"
XPRUNE="${XPRUNE:-xprune}"
cd "$(git rev-parse --show-toplevel)" || exit 2
git rev-parse --verify --quiet "$BASE^{commit}" >/dev/null \
    || { echo "check-submission: unknown base ref $BASE (fetch it first)"; exit 2; }

diff="$(git diff --name-only --diff-filter=AM "$BASE...HEAD" --)" \
    || { echo "check-submission: git diff against $BASE failed"; exit 1; }
mapfile -t changed <<<"$diff"
[ -z "$diff" ] && changed=()
status=0
methods=() ; reports=()
for path in "${changed[@]}"; do
    case "$path" in
        methods/_*) ;;
        methods/*.py) methods+=("$path") ;;
        reports/*.json) reports+=("$path") ;;
    esac
done
echo "check-submission: ${#changed[@]} changed file(s) since $BASE:" \
     "${#methods[@]} method plugin(s), ${#reports[@]} record(s);" \
     "kernels pinned: ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA" \
     "MKL_CBWR=$MKL_CBWR"

log="$(mktemp)"
passed() {  # passed PATTERN COMMAND...: run it, show its output, pass only on exit 0 + PATTERN
    local pattern="$1"; shift
    "$@" >"$log" 2>&1; local code=$?
    cat "$log"
    if [ "$code" != 0 ]; then echo "check-submission: step exited with status $code"; return 1; fi
    if ! grep -Eq "$pattern" "$log"; then
        echo "check-submission: step exited 0 without its pass line: treated as a failure"
        return 1
    fi
}

for plugin in "${methods[@]}"; do
    echo "== xprune check $plugin"
    passed "^check passed: " $XPRUNE check "$plugin" || status=1
done

if [ "${#reports[@]}" -gt 0 ]; then
    staged="$(mktemp -d)"
    trap 'rm -rf "$staged" "$log"' EXIT
    for record in "${reports[@]}"; do  # the changed records only, in their published layout
        mkdir -p "$staged/$(dirname "$record")"
        cp "$record" "$staged/$record"
    done
    tolerance=()
    [ -n "${VERIFY_TOLERANCE:-}" ] && tolerance=(--tolerance "$VERIFY_TOLERANCE")
    echo "== xprune verify --reports <the ${#reports[@]} changed record(s)>"
    passed "^verified .*: ok\$" $XPRUNE verify --reports "$staged/reports" "${tolerance[@]}" \
        || status=1
fi

rm -f "$log"
if [ "$status" = 0 ]; then
    echo "check-submission: all checks passed"
    exit 0
fi
echo "check-submission: FAILED (see above)"
exit 1
