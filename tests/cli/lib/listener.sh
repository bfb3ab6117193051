# shellcheck shell=bash
# For CLI tests that run `moonwatch run --listen 127.0.0.1:0`; source it.
#
#   listener_addr LOG   waits (at most 10 s) for the run's log LOG to say
#                       "status listener on 127.0.0.1:PORT" and prints
#                       127.0.0.1:PORT; returns 1 when it does not come.
#                       LOG must be new or emptied before the run is started:
#                       a run started with `&` empties it only once its own
#                       process runs, and until then LOG still names the
#                       previous run's port
listener_addr() {
  local line
  for _ in $(seq 1 100); do
    line=$(grep -o 'status listener on 127.0.0.1:[0-9]*' "$1" 2> /dev/null | head -1)
    if [ -n "$line" ]; then
      echo "${line#status listener on }"
      return 0
    fi
    sleep 0.1
  done
  return 1
}
