#!/usr/bin/env bash
# Check a submission against a base git ref: what a reviewer would run by hand.
#
#   .ci/check-submission.sh BASE_REF      e.g. origin/main (CI) or main (locally)
#
# Every added/modified methods/*.py       -> xprune check <file>
# Every added/modified reports/**/*.json  -> xprune verify on exactly those records (each
#                                            re-run from scratch and compared)
# Exit status 1 when any check or verification fails, 0 otherwise (also when nothing changed).
# Environment: XPRUNE (command, default "xprune"), VERIFY_TOLERANCE (default: verify's own).
# The protocol's pinned kernels (bench/kernels.py) are always used: an XPRUNE_NATIVE_KERNELS
# opt-out in the caller's environment is removed, and the pin is exported for every process.
set -u
unset XPRUNE_NATIVE_KERNELS
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2,STRICT

BASE="${1:?usage: .ci/check-submission.sh BASE_REF}"
XPRUNE="${XPRUNE:-xprune}"
cd "$(git rev-parse --show-toplevel)" || exit 2
git rev-parse --verify --quiet "$BASE^{commit}" >/dev/null \
    || { echo "check-submission: unknown base ref $BASE (fetch it first)"; exit 2; }

mapfile -t changed < <(git diff --name-only --diff-filter=AM "$BASE...HEAD" --)
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

for plugin in "${methods[@]}"; do
    echo "== xprune check $plugin"
    $XPRUNE check "$plugin" || status=1
done

if [ "${#reports[@]}" -gt 0 ]; then
    staged="$(mktemp -d)"
    trap 'rm -rf "$staged"' EXIT
    for record in "${reports[@]}"; do  # the changed records only, in their published layout
        mkdir -p "$staged/$(dirname "$record")"
        cp "$record" "$staged/$record"
    done
    tolerance=()
    [ -n "${VERIFY_TOLERANCE:-}" ] && tolerance=(--tolerance "$VERIFY_TOLERANCE")
    echo "== xprune verify --reports <the ${#reports[@]} changed record(s)>"
    $XPRUNE verify --reports "$staged/reports" "${tolerance[@]}" || status=1
fi

[ "$status" = 0 ] && echo "check-submission: all checks passed" \
    || echo "check-submission: FAILED (see above)"
exit "$status"
