#!/bin/bash
# run-under-systemd.sh: boot a throw-away *real* systemd (PID 1 of private pid/mount/cgroup
# [/net] namespaces) that loads units only from the given dirs, run a command inside those
# namespaces (systemctl/journalctl work there), then tear it all down.
#
# usage: run-under-systemd.sh [-u UNITDIR]... [-t TARGET] [--net] [--no-journal] [--keep-log] -- CMD [ARGS...]
#   -u DIR        unit directory (repeatable; put your *.service and TARGET there)
#   -t TARGET     unit systemd starts at boot (default: sdprobe-boot.target = empty target)
#   --net         also give the systemd its own network namespace (only 'lo')
#   --no-journal  don't start systemd-journald (service output then goes nowhere unless
#                 StandardOutput=append:/file is used)
# Inside CMD: $SDPROBE_PID = host pid of that systemd, $SDPROBE_STATE = state dir
# (systemd's own log is in $SDPROBE_STATE/console.log).  Exit status = CMD's status.
# Requirements: root, util-linux unshare/nsenter, cgroup2 mounted somewhere (v2 or hybrid).
#
# Caveats seen on these machines (systemd 252, hybrid cgroups, PID 1 is not systemd):
# - The cgroup namespace and the private cgroup2 mount are essential: a plain `unshare` + systemd
#   creates init.scope/system.slice in the host's cgroups, attaches v1 controllers and remounts the
#   host's /sys/fs/cgroup read-only.
# - `unshare --fork` ignores SIGTERM; --kill-child is what lets a timeout end it.
# - Only the hugetlb controller is on cgroup2 here: MemoryMax=/CPUQuota= do not work. No BPF:
#   avoid IPAddressDeny=. DeviceAllow= works.
# - /dev is the host's devtmpfs: what a unit writes there is visible to the host.
# - /dev/net/tun is 0600: User=nobody / DynamicUser= cannot open it; DynamicUser implies PrivateTmp.
# - Units need DefaultDependencies=no (sysinit.target and friends are not in the unit path).
# - ExecStart must name an interpreter that has the project installed (e.g. the venv's).
# - `systemd-analyze verify` exits 0 on syntax warnings unless --recursive-errors= is given.
#
# ndisproxy's copy (tools/run-under-systemd.sh) of /work/shared/tools/run-under-systemd.sh;
# tests/test_systemd.py runs the units under it.  Same behaviour, except:
# - --keep-log is parsed (the shared copy documents it but only honours $KEEP_LOG, and
#   answers "unknown arg --keep-log"); $KEEP_LOG still works.
# - When the manager never reports running/degraded, CMD still runs (as before) but a
#   warning with the tail of systemd's log goes to stderr first.
# - Mounts are made shared (inside the private mount namespace, so new peer groups that do not
#   reach the host) before systemd starts: with $container set, systemd leaves them private,
#   and then mounts made after a service started (`ip netns add`'s /run/netns/NAME) never
#   propagate into its namespace, unlike on a host where systemd is PID 1.
# - When used by ndisproxy's tests: a unit runs with the service's own sandbox, so the
#   interpreter (and the config) must be visible inside it: PrivateTmp hides /tmp and
#   ProtectHome hides /root and /home.  The test adds a drop-in with BindReadOnlyPaths=
#   for paths under /tmp and ProtectHome=read-only for paths under /root or /home.
set -euo pipefail
UNITDIRS=(); TARGET=sdprobe-boot.target; NET=0; JOURNAL=1
while [ $# -gt 0 ]; do
  case "$1" in
    -u) UNITDIRS+=("$(readlink -f "$2")"); shift 2;;
    -t) TARGET="$2"; shift 2;;
    --net) NET=1; shift;;
    --no-journal) JOURNAL=0; shift;;
    --keep-log) KEEP_LOG=1; shift;;
    --) shift; break;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
[ $# -gt 0 ] || { echo "need -- CMD" >&2; exit 2; }
SYSTEMD=/lib/systemd/systemd
# find the cgroup2 hierarchy (pure v2: /sys/fs/cgroup, hybrid: /sys/fs/cgroup/unified)
CG2=""
for m in /sys/fs/cgroup /sys/fs/cgroup/unified; do
  [ "$(stat -f -c %T "$m" 2>/dev/null)" = cgroup2fs ] && { CG2=$m; break; }
done
[ -n "$CG2" ] || { echo "no cgroup2 mount found" >&2; exit 1; }
STATE=$(mktemp -d /tmp/sdprobe.XXXXXX)
CG="$CG2/sdprobe.$(basename "$STATE")"
mkdir "$CG"
mkdir "$STATE/units"
: > "$STATE/console.log"
# helper units: an empty boot target + exit.target so 'systemctl exit' works
cat > "$STATE/units/sdprobe-boot.target" <<U
[Unit]
Description=sdprobe boot target
DefaultDependencies=no
U
cat > "$STATE/units/exit.target" <<U
[Unit]
DefaultDependencies=no
Requires=systemd-exit.service
After=systemd-exit.service
AllowIsolate=yes
U
cat > "$STATE/units/systemd-exit.service" <<U
[Unit]
DefaultDependencies=no
[Service]
Type=oneshot
ExecStart=/bin/systemctl --force exit
U
if [ $JOURNAL = 1 ]; then
  # journald with only the /run/systemd/journal/{socket,stdout} socket (no /dev/log symlink
  # on the shared host /dev, no audit), volatile storage (see journald.conf.d below)
  cp /lib/systemd/system/systemd-journald.socket "$STATE/units/"
  sed -e 's/^Sockets=.*/Sockets=systemd-journald.socket/' \
      -e '/^After=/d' -e '/^DeviceAllow/d' -e '/^IPAddressDeny/d' -e 's/^\[Service\]/[Service]\nEnvironment=SYSTEMD_LOG_TARGET=console/' \
      /lib/systemd/system/systemd-journald.service > "$STATE/units/systemd-journald.service"
  mkdir -p "$STATE/units/$TARGET.wants"
  ln -s ../systemd-journald.socket "$STATE/units/$TARGET.wants/"
  ln -s ../systemd-journald.service "$STATE/units/$TARGET.wants/"
fi
UNITPATH="$(IFS=:; echo "${UNITDIRS[*]:-}"):$STATE/units"
UNITPATH="${UNITPATH#:}"
NETFLAG=""; [ $NET = 1 ] && NETFLAG="--net"

cat > "$STATE/inner.sh" <<I
set -e
mount -n -t tmpfs -o mode=755,nosuid,nodev tmpfs /run        # private /run (no clash with host)
mount -n -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup  # rooted at our cgroup ns
mount -n --bind "$STATE/console.log" /dev/console             # systemd logs to /dev/console
mount -n --make-rshared /                                     # as PID 1 makes it on a host
mkdir -p /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /run/systemd/journald.conf.d/volatile.conf
export container=sdprobe SYSTEMD_UNIT_PATH="$UNITPATH"
exec $SYSTEMD --system --unit="$TARGET" --log-level=info --show-status=no </dev/null >>"$STATE/console.log" 2>&1
I
# move ourselves into the fresh cgroup, then unshare (cgroup ns root = $CG)
( echo $BASHPID > "$CG/cgroup.procs"
  exec unshare --cgroup --pid --fork --kill-child --mount --mount-proc --propagation private $NETFLAG \
       bash "$STATE/inner.sh" ) &
USPID=$!
cleanup() {
  set +e
  if [ -n "${SDPID:-}" ] && kill -0 "$SDPID" 2>/dev/null; then
    timeout 10 nsenter -t "$SDPID" -m -p systemctl --no-block exit 0 >/dev/null 2>&1
    for i in $(seq 50); do kill -0 "$SDPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SDPID" 2>/dev/null   # PID 1 of the pid ns: takes every process in it along
  fi
  kill "$USPID" 2>/dev/null; wait "$USPID" 2>/dev/null
  # remove the cgroups systemd created below our root (depth first)
  for i in 1 2 3 4 5; do
    find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$CG" ] || break; sleep 0.2
  done
  [ -d "$CG" ] && echo "WARN: could not remove $CG" >&2
  [ -n "${KEEP_LOG:-}" ] || rm -rf "$STATE"
}
trap cleanup EXIT
# find systemd (the unshare child) and wait until its manager socket answers
SDPID=""
for i in $(seq 100); do
  SDPID=$(cat /proc/$USPID/task/*/children 2>/dev/null | awk '{print $1}' || true)
  [ -n "$SDPID" ] && grep -q systemd /proc/$SDPID/comm 2>/dev/null && break
  SDPID=""; sleep 0.1
done
[ -n "$SDPID" ] || { echo "systemd did not start; log:" >&2; cat "$STATE/console.log" >&2; exit 1; }
for i in $(seq 100); do
  st=$(nsenter -t "$SDPID" -m -p systemctl is-system-running 2>/dev/null || true)
  case "$st" in running|degraded) break;; esac
  sleep 0.1
done
case "$st" in
  running|degraded) ;;
  *) echo "WARN: systemd reports '${st:-nothing}' after 10 s; its log ends:" >&2
     tail -n 20 "$STATE/console.log" >&2;;
esac
export SDPROBE_PID=$SDPID SDPROBE_STATE=$STATE
NSFLAGS="-m -p -C"; [ $NET = 1 ] && NSFLAGS="$NSFLAGS -n"
set +e
nsenter -t "$SDPID" $NSFLAGS --wdns="$PWD" -- "$@"
rc=$?
exit $rc
