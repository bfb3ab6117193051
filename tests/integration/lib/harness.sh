# shellcheck shell=bash
# What the integration test scripts share; source it, don't run it.
#
#   mw_harness_binary ARG   the moonwatch binary ARG, made absolute, into
#                           $mw; without an executable ARG, usage and exit 2
#   mw_harness_need_docker  exit 77 (ctest's skip) saying why when this
#                           host cannot run the private engine (dockerd.sh,
#                           which must be sourced first)
#   ok / bad WHAT           count a pass or a failure in $pass / $fail
#   check WHAT COMMAND...   ok or bad by COMMAND's status
#   not COMMAND...          COMMAND's status negated, for check
#   die WHAT                a failure that ends the script (its EXIT trap
#                           cleans up)
pass=0 fail=0

mw_harness_binary() {
  mw=${1:-}
  if [ -z "$mw" ] || [ ! -x "$mw" ]; then
    echo "usage: $0 MOONWATCH_BINARY" >&2
    exit 2
  fi
  mw=$(cd "$(dirname "$mw")" && pwd)/$(basename "$mw")
}

mw_harness_need_docker() {
  local why
  if ! why=$(mw_dockerd_usable); then
    echo "SKIP: $why"
    exit 77
  fi
}

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
not() { ! "$@"; }
die() {
  bad "$*"
  exit 1
}
