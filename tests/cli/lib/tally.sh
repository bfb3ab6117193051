# shellcheck shell=bash
# The pass/fail count of a CLI test script; source it.
#
#   ok          counts a passed assertion
#   bad MSG     counts a failed one and prints FAIL: MSG on stderr
#   tally       prints the counts; its status is the script's result
#               (0 when nothing failed), so a script ends with it
fail=0 pass=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
tally() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
