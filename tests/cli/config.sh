#!/usr/bin/env bash
# `moonwatch config` / `run --print-config`: every key with its value and
# origin; the precedence flags > environment (MW_<KEY>, DD_*) > file >
# defaults; secrets masked; an unknown MW_ name warned about, a bad value
# naming its variable; and deploy/moonwatch.yaml and the README's
# configuration reference list every key the program knows.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the environment of the machine running the tests is not the test's
for v in $(env | sed -n 's/^\(\(MW\|DD\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# The value and origin `config` shows for a key: "VALUE (ORIGIN)".
show() { # show KEY [config args...]
    local key=$1
    shift
    "$mw" config "$@" 2> "$tmp/show.err" | awk -v k="$key" '$1 == k { $1 = ""; sub(/^ +/, ""); gsub(/  +/, " "); print }'
}
expect() { # expect WHAT GOT WANT
    if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

# --- every key is documented in deploy/moonwatch.yaml, with its default
keys=$("$mw" config --list-keys) || bad "config --list-keys failed"
n=0
while IFS=$'\t' read -r key def _; do
    n=$((n + 1))
    grep -qE "^#? ?$key: $(sed 's/[.[*^$]/\\&/g' <<<"$def")( |\$)" "$src/deploy/moonwatch.yaml" ||
        bad "deploy/moonwatch.yaml: no '# $key: $def' line"
done <<<"$keys"
[ "$n" -gt 40 ] && ok || bad "config --list-keys listed $n keys"
# ... and in the README's configuration reference
while IFS=$'\t' read -r key _ env _; do
    grep -qE "^\| \`$key\` \|.*\`$env\`" "$src/README.md" ||
        bad "README.md: no row for $key ($env) in the configuration reference"
done <<<"$keys"

# --- defaults, file, environment, flags
printf 'flush_interval: 3\nhostname: from-file\nlog_level: error\n' > "$tmp/mw.yaml"
expect "default" "$(show flush_interval)" "15 (default)"
expect "file" "$(show flush_interval -c "$tmp/mw.yaml")" "3 (file:$tmp/mw.yaml:1)"
expect "env over file" "$(MW_FLUSH_INTERVAL=7 show flush_interval -c "$tmp/mw.yaml")" \
    "7 (env:MW_FLUSH_INTERVAL)"
expect "--set over env" \
    "$(MW_FLUSH_INTERVAL=7 show flush_interval --set flush_interval=9 -c "$tmp/mw.yaml")" \
    "9 (flag:--set)"
expect "a flag over env" \
    "$(MW_FLUSH_INTERVAL=7 show flush_interval -c "$tmp/mw.yaml" --flush-interval 2)" \
    "2 (flag:--flush-interval)"
expect "file key untouched by env" "$(MW_FLUSH_INTERVAL=7 show hostname -c "$tmp/mw.yaml")" \
    "from-file (file:$tmp/mw.yaml:2)"
expect "MW_ over DD_" "$(DD_HOSTNAME=dd MW_HOSTNAME=mw show hostname -c "$tmp/mw.yaml")" \
    "mw (env:MW_HOSTNAME)"
expect "plural list key" "$(MW_CHECKS_DIRS=/a,/b show checks_dir)" "/a, /b (env:MW_CHECKS_DIRS)"
expect "plural key with --set" "$(show checks_dir --set checks_dirs=/c)" "/c (flag:--set)"

# --- the Datadog names
expect DD_SITE "$(DD_SITE=datadoghq.eu show site)" "datadoghq.eu (env:DD_SITE)"
expect DD_DD_URL "$(DD_DD_URL=http://127.0.0.1:9 show dd_url)" "http://127.0.0.1:9 (env:DD_DD_URL)"
expect DD_TAGS "$(DD_TAGS='env:prod team:a' show tags)" "env:prod team:a (env:DD_TAGS)"
expect DD_HOSTNAME "$(DD_HOSTNAME=h1 show hostname -c "$tmp/mw.yaml")" "h1 (env:DD_HOSTNAME)"
expect DD_LOG_LEVEL "$(DD_LOG_LEVEL=WARNING show log_level -c "$tmp/mw.yaml")" \
    "warn (env:DD_LOG_LEVEL)"
expect "DD_LOG_LEVEL trace" "$(DD_LOG_LEVEL=trace show log_level)" "debug (env:DD_LOG_LEVEL)"
expect DD_CONTAINER_INCLUDE "$(DD_CONTAINER_INCLUDE='name:web image:nginx.*' show container_include)" \
    "name:web image:nginx.* (env:DD_CONTAINER_INCLUDE)"
expect DD_CONTAINER_EXCLUDE \
    "$(DD_CONTAINER_EXCLUDE='image:.*' show container_exclude --set container_exclude=name:x)" \
    "image:.*, name:x (env:DD_CONTAINER_EXCLUDE + flag:--set)"

# --- secrets: masked wherever they come from, never whole on any stream
key=0123456789abcdef0123456789abWXYZ
printf 'api_key: %s\n' "$key" > "$tmp/secret.yaml"
for how in env file set run; do
    case $how in
    env) DD_API_KEY=$key "$mw" config > "$tmp/out" 2>&1 ;;
    file) "$mw" config -c "$tmp/secret.yaml" > "$tmp/out" 2>&1 ;;
    set) "$mw" config --set "api_key=$key" > "$tmp/out" 2>&1 ;;
    run) MW_API_KEY=$key "$mw" run --print-config > "$tmp/out" 2>&1 ;;
    esac
    rc=$?
    expect "$how: exit status" "$rc" 0
    grep -q "$key" "$tmp/out" && bad "$how: the API key is printed whole"
    grep -q '^api_key  *\*\*\*WXYZ ' "$tmp/out" && ok || bad "$how: api_key not shown masked: $(grep api_key "$tmp/out")"
done
DD_API_KEY=$key "$mw" config --json > "$tmp/out" 2>&1 || bad "config --json failed"
grep -q "$key" "$tmp/out" && bad "json: the API key is printed whole"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["api_key"] == {"value": "***WXYZ", "origin": "env:DD_API_KEY"}, d["api_key"]
assert d["flush_interval"] == {"value": "15", "origin": "default"}, d["flush_interval"]' "$tmp/out" &&
    ok || bad "config --json: $(cat "$tmp/out")"
expect "a short key" "$(MW_API_KEY=abc show api_key)" "*** (env:MW_API_KEY)"
expect "a URL's password" "$(MW_DD_URL=https://u:hunter2@127.0.0.1:9 show dd_url)" \
    "https://u:***@127.0.0.1:9 (env:MW_DD_URL)"

# --- run --print-config prints the same and exits 0
"$mw" config -c "$tmp/mw.yaml" > "$tmp/a" 2>&1
"$mw" run --print-config -c "$tmp/mw.yaml" > "$tmp/b" 2>&1 && ok || bad "run --print-config failed"
cmp -s "$tmp/a" "$tmp/b" && ok || bad "run --print-config and config differ"

# --- an unknown MW_ name is warned about, once; a bad value names its variable
MW_FLUSH_INTRVAL=3 "$mw" config > /dev/null 2> "$tmp/err" && ok || bad "a typo in MW_ is fatal"
expect "one warning" "$(grep -c 'MW_FLUSH_INTRVAL' "$tmp/err")" 1
MW_FLUSH_INTERVAL=soon "$mw" config > /dev/null 2> "$tmp/err"
expect "bad value: exit status" "$?" 2
grep -q 'MW_FLUSH_INTERVAL' "$tmp/err" && ok || bad "the error does not name the variable: $(cat "$tmp/err")"
DD_LOG_LEVEL=loud "$mw" config > /dev/null 2> "$tmp/err"
expect "bad DD_ value: exit status" "$?" 2
grep -q 'DD_LOG_LEVEL' "$tmp/err" && ok || bad "the error does not name DD_LOG_LEVEL: $(cat "$tmp/err")"

# `run` says the warning in its log, in the log's format
MW_FLUSH_INTRVAL=3 "$mw" run --no-bundled --sink none --set docker=off --set ecs=off \
    --log-format json > /dev/null 2> "$tmp/run.err" &
pid=$!
for _ in $(seq 1 50); do
    grep -q 'running' "$tmp/run.err" && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
expect "run: exit status" "$?" 0
expect "run: one warning" "$(grep -c 'MW_FLUSH_INTRVAL' "$tmp/run.err")" 1
grep -v '^{' "$tmp/run.err" && bad "run: a log line that is not JSON"
grep 'MW_FLUSH_INTRVAL' "$tmp/run.err" | grep -q '"level":"warn"' && ok ||
    bad "run: the warning is not a warn line: $(cat "$tmp/run.err")"

tally
