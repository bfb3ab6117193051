# shellcheck shell=bash
# Private Docker engine for integration tests; source it, don't run it.
#
#   mw_dockerd_start DIR     start dockerd with all its state under DIR and
#                            export DOCKER_HOST=unix://DIR/docker.sock
#   mw_dockerd_image REF     import a busybox image (no registry here)
#   mw_dockerd_restart [SEC] stop the engine, stay down SEC seconds (default
#                            0), start it again on the same data
#   mw_dockerd_stop          stop containers and engine, unmount, remove DIR
#   mw_docker ARGS...        Debian's docker client against that engine
#   mw_dockerd_usable        print why this host cannot run the engine and
#                            return 1 (for a test's skip), else return 0
#
# Installs nothing: .ci/deps.sh must provide docker.io (dockerd, containerd,
# runc, /usr/bin/docker) and busybox-static (/bin/busybox). Must run as root.
# The engine has no bridge and no iptables rules, so containers need
# --network host; vfs storage works on any filesystem, overlay or not.
# Every wait is bounded; failures print the tail of DIR/dockerd.log.

# Debian's client by full path: a newer client elsewhere on PATH (seen in
# /usr/local/bin) is not the one the engine was tested with.
MW_DOCKER=${MW_DOCKER:-/usr/bin/docker}
MW_DOCKERD=${MW_DOCKERD:-/usr/sbin/dockerd}
MW_BUSYBOX=${MW_BUSYBOX:-/bin/busybox}
MW_DOCKERD_TIMEOUT=${MW_DOCKERD_TIMEOUT:-30}   # seconds to become ready
MW_DOCKERD_STOP_TIMEOUT=${MW_DOCKERD_STOP_TIMEOUT:-15}
MW_DOCKERD_DIR=${MW_DOCKERD_DIR:-}
MW_DOCKERD_PID=${MW_DOCKERD_PID:-}
MW_DOCKERD_READY_MS=${MW_DOCKERD_READY_MS:-}   # last start's time to ready
# These are this helper's settings, not moonwatch's: moonwatch reads
# MW_<KEY> from its environment (MW_DOCKER is its `docker` key), so none
# of them is passed on to the programs the tests start.
export -n MW_DOCKER MW_DOCKERD MW_BUSYBOX MW_DOCKERD_TIMEOUT MW_DOCKERD_STOP_TIMEOUT \
  MW_DOCKERD_DIR MW_DOCKERD_PID MW_DOCKERD_READY_MS

_mw_now_ms() { echo $(($(date +%s%N) / 1000000)); }

_mw_dockerd_fail() {
  echo "dockerd.sh: $*" >&2
  if [ -n "$MW_DOCKERD_DIR" ] && [ -f "$MW_DOCKERD_DIR/dockerd.log" ]; then
    echo "--- last lines of $MW_DOCKERD_DIR/dockerd.log" >&2
    tail -n 30 "$MW_DOCKERD_DIR/dockerd.log" >&2
  fi
  return 1
}

# Every client call gets a time limit: a wedged engine must fail a test,
# not hang it.
mw_docker() {
  timeout "${MW_DOCKER_CMD_TIMEOUT:-60}" "$MW_DOCKER" \
    -H "unix://$MW_DOCKERD_DIR/docker.sock" "$@"
}

mw_dockerd_usable() {
  [ "$(id -u)" -eq 0 ] || { echo "dockerd needs root"; return 1; }
  [ -x "$MW_DOCKERD" ] || { echo "$MW_DOCKERD missing (package docker.io)"; return 1; }
  [ -x "$MW_DOCKER" ] || { echo "$MW_DOCKER missing (package docker.io)"; return 1; }
  [ -x "$MW_BUSYBOX" ] || { echo "$MW_BUSYBOX missing (package busybox-static)"; return 1; }
}

_mw_dockerd_answers() {
  MW_DOCKER_CMD_TIMEOUT=2 mw_docker version >/dev/null 2>&1
}

_mw_dockerd_alive() {
  [ -n "$MW_DOCKERD_PID" ] && kill -0 "$MW_DOCKERD_PID" 2>/dev/null
}

# Launch dockerd on MW_DOCKERD_DIR and wait until the API answers.
_mw_dockerd_launch() {
  local d=$MW_DOCKERD_DIR t0 deadline
  t0=$(_mw_now_ms)
  deadline=$((t0 + MW_DOCKERD_TIMEOUT * 1000))
  "$MW_DOCKERD" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver=vfs --host="unix://$d/docker.sock" \
    --data-root="$d/data" --exec-root="$d/exec" --pidfile="$d/docker.pid" \
    >>"$d/dockerd.log" 2>&1 </dev/null &
  MW_DOCKERD_PID=$!
  until _mw_dockerd_answers; do
    _mw_dockerd_alive || _mw_dockerd_fail "dockerd exited during start-up" || return 1
    if [ "$(_mw_now_ms)" -ge "$deadline" ]; then
      _mw_dockerd_kill # a half-started engine must not outlive the test
      _mw_dockerd_fail "dockerd not ready after ${MW_DOCKERD_TIMEOUT}s" || return 1
    fi
    sleep 0.1
  done
  MW_DOCKERD_READY_MS=$(($(_mw_now_ms) - t0))
}

mw_dockerd_start() {
  local dir=${1:?usage: mw_dockerd_start DIR}
  [ -x "$MW_DOCKERD" ] && [ -x "$MW_DOCKER" ] ||
    _mw_dockerd_fail "$MW_DOCKERD or $MW_DOCKER missing (.ci/deps.sh must install docker.io)" ||
    return 1
  [ "$(id -u)" -eq 0 ] || _mw_dockerd_fail "dockerd needs root" || return 1
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  # sun_path holds 108 bytes; a deep DIR would fail with an obscure error.
  [ ${#dir} -le 90 ] || _mw_dockerd_fail "DIR too long for a unix socket: $dir" || return 1
  MW_DOCKERD_DIR=$dir
  export DOCKER_HOST="unix://$dir/docker.sock"
  _mw_dockerd_launch
}

# SIGTERM (dockerd then stops its containers and containerd), bounded wait,
# then SIGKILL.
_mw_dockerd_kill() {
  local pid=$MW_DOCKERD_PID i
  [ -n "$pid" ] || pid=$(cat "$MW_DOCKERD_DIR/docker.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || { MW_DOCKERD_PID=; return 0; }
  for ((i = 0; i < MW_DOCKERD_STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "dockerd.sh: dockerd ignored SIGTERM for ${MW_DOCKERD_STOP_TIMEOUT}s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true # reap it when it is our child
  MW_DOCKERD_PID=
}

# After a SIGKILL of dockerd, containerd and the runc shims outlive it (the
# shims are built to survive their daemon). containerd and the containers'
# init processes leave pid files under DIR; the shims write none, but their
# command line names the containerd socket under DIR. DIR is private to this
# engine, so only its processes are hit.
_mw_dockerd_kill_leftovers() {
  local f pid pids=()
  while IFS= read -r f; do
    pid=$(cat "$f" 2>/dev/null) || continue
    case $pid in '' | *[!0-9]*) continue ;; esac
    pids+=("$pid")
  done < <(find "$MW_DOCKERD_DIR" -name '*.pid' -type f 2>/dev/null)
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$pid" != $$ ] || continue
    { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$MW_DOCKERD_DIR/" && pids+=("$pid")
  done
  [ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
}

# Deepest mount first; a busy one is detached lazily so rm can proceed.
_mw_dockerd_unmount() {
  local m
  while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$MW_DOCKERD_DIR" 'index($5, d "/") == 1 { print $5 }' \
    /proc/self/mountinfo | sort -r)
}

mw_dockerd_stop() {
  local ids
  [ -n "$MW_DOCKERD_DIR" ] || return 0
  if _mw_dockerd_alive || _mw_dockerd_answers; then
    ids=$(MW_DOCKER_CMD_TIMEOUT=10 mw_docker ps -q 2>/dev/null) || ids=
    # shellcheck disable=SC2086 # one argument per id
    [ -z "$ids" ] || MW_DOCKER_CMD_TIMEOUT=30 mw_docker stop -t 2 $ids >/dev/null 2>&1 || true
  fi
  _mw_dockerd_kill
  _mw_dockerd_kill_leftovers
  _mw_dockerd_unmount
  rm -rf "$MW_DOCKERD_DIR" ||
    _mw_dockerd_fail "could not remove $MW_DOCKERD_DIR" || return 1
  MW_DOCKERD_DIR=
  unset DOCKER_HOST
}

# For engine-restart tests: containers and images stay on the data root.
# A pause while down lets clients notice the outage and back off.
mw_dockerd_restart() {
  local down=${1:-0}
  [ -n "$MW_DOCKERD_DIR" ] || _mw_dockerd_fail "restart: no engine started" || return 1
  _mw_dockerd_kill
  [ "$down" = 0 ] || sleep "$down"
  _mw_dockerd_launch
}

# A busybox rootfs: the static binary plus one symlink per applet, and a
# page at / for `httpd` run from the default working directory.
mw_dockerd_image() {
  local ref=${1:?usage: mw_dockerd_image NAME:TAG} root a
  [ -x "$MW_BUSYBOX" ] ||
    _mw_dockerd_fail "$MW_BUSYBOX missing (.ci/deps.sh must install busybox-static)" ||
    return 1
  root=$(mktemp -d "$MW_DOCKERD_DIR/rootfs.XXXXXX") || return 1
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
  chmod 1777 "$root/tmp"
  cp "$MW_BUSYBOX" "$root/bin/busybox"
  for a in $("$MW_BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo 'moonwatch busybox image' >"$root/index.html"
  tar -C "$root" --numeric-owner -c . | mw_docker import - "$ref" >/dev/null ||
    _mw_dockerd_fail "docker import $ref failed" || return 1
  rm -rf "$root"
}
