#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Several independent libvirt daemons on this one machine, for end-to-end
# tests of remote libvirt hosts (qemu+tcp://): each is a root libvirtd in a
# mount namespace of its own, where DIR/hostK's directories are bind-mounted
# over libvirt's fixed paths (/run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt, /var/log/libvirt, /etc/libvirt), so each has its own
# sockets, state, config, logs and QEMUs, and one can be killed mid-run.
#
#   tools/libvirt-hosts.sh start DIR N   start host1..hostN under DIR, wait
#                                         until each answers, print one line
#                                         per host: "hostK URI PID"
#   tools/libvirt-hosts.sh stop DIR      kill every daemon started under DIR
#                                         and every QEMU they started (also
#                                         the ones a SIGKILLed daemon left)
#
# Each daemon listens on 127.0.0.1 on a free TCP port, without TLS or auth
# (qemu+tcp://127.0.0.1:PORT/system); its unix socket is DIR/hostK/run/
# libvirt-sock. Its QEMUs run as root without a security driver and without
# cgroups (with them, two daemons' domains of the same name and id share
# /sys/fs/cgroup/*/machine/qemu-ID-NAME.libvirt-qemu, and a destroy on one
# fails to remove it). Logs stay in DIR/hostK after stop: libvirtd.log,
# stdout.log and log/qemu/NAME.log. Needs root, libvirtd, virsh and
# unshare. The empty mount points under /var are made once and left
# (removing a directory that is a mount point in another namespace would
# detach that namespace's mount).
# LIBVIRT_HOSTS_TIMEOUT: seconds each daemon may take to answer (default 90;
# a start without a capabilities cache probes every QEMU binary, about 4 s on
# an idle machine, 0.3 s with the cache).
# LIBVIRT_HOSTS_CAPS_CACHE: a directory for libvirt's QEMU capabilities cache
# (*.xml): copied into each host before it starts, and host1's copied back
# once it answered. libvirt checks each file against the QEMU binary and
# probes again when it is stale.
set -euo pipefail

readonly k_paths=(/run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt)
readonly k_dirs=(run lib cache log etc)
timeout_s=${LIBVIRT_HOSTS_TIMEOUT:-90}

die() {
	echo "libvirt-hosts: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start DIR N | stop DIR" >&2
	exit 2
}

now_ms() {
	local s ns
	read -r s ns < <(date '+%s %N')
	echo $((s * 1000 + 10#$ns / 1000000))
}

# Ports something listens on (TCP, IPv4 and IPv6), one a line.
listening_ports() {
	local hex
	awk 'FNR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u | while read -r hex; do
		echo $((16#$hex))
	done
}

# A port in 20000-32767 (below the kernel's ephemeral range) that nothing
# listens on and that is not in the words of $1.
free_port() {
	local taken=$1 used port i
	used=$(listening_ports)
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + RANDOM % 12768))
		if ! grep -qx "$port" <<<"$used" && [[ " $taken " != *" $port "* ]]; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found"
}

# True if $1 is alive (not gone, not a zombie).
alive() {
	local state
	state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# "MAJ:MIN ROOT" of the mount at /run/libvirt that process $1 sees.
run_mount_of() {
	awk '$5 == "/run/libvirt" { m = $3 " " $4 } END { if (m != "") print m }' \
		"/proc/$1/mountinfo" 2>/dev/null
}

# "PID MAJ:MIN ROOT" of every process that has a mount at /run/libvirt (one
# grep: a fork per process takes seconds on a busy machine).
run_mounts() {
	grep -H ' /run/libvirt ' /proc/[0-9]*/mountinfo 2>/dev/null |
		awk '$5 == "/run/libvirt" { split($1, p, "/"); print p[3], $3, $4 }'
}

# True if process $1 lives in host dir $2's namespace: its /run/libvirt is
# the bind mount of $2/run (as recorded when the daemon came up).
owned_by() {
	local seen
	seen=$(run_mount_of "$1") || return 1
	is_host_mount "$2" "$seen"
}

# True if "MAJ:MIN ROOT" $2 is host dir $1's /run/libvirt: the one recorded
# when its daemon answered, or (none recorded) a ROOT that $1/run ends with.
is_host_mount() {
	local host=$1 seen=$2
	[[ -n $seen ]] || return 1
	if [[ -s $host/run-mount ]]; then
		[[ $seen == "$(<"$host/run-mount")" ]]
	else
		[[ $host/run == *"${seen#* }" && ${seen#* } != / ]]
	fi
}

cmdline_of() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# SIGKILL the given pids and wait (bounded) until they are gone.
kill_and_wait() {
	local pid deadline
	(($# > 0)) || return 0
	kill -KILL "$@" 2>/dev/null || true
	deadline=$(($(now_ms) + 10000))
	for pid in "$@"; do
		while alive "$pid"; do
			(($(now_ms) < deadline)) || {
				echo "libvirt-hosts: pid $pid still there after SIGKILL" >&2
				break
			}
			sleep 0.05
		done
	done
}

write_config() {
	local host=$1 port=$2
	cat >"$host/etc/libvirtd.conf" <<EOF
# Written by tools/libvirt-hosts.sh
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$port"
auth_tcp = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$host/libvirtd.log"
EOF
	cat >"$host/etc/qemu.conf" <<EOF
# Written by tools/libvirt-hosts.sh
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
cgroup_controllers = [ ]
EOF
}

# Starts host dir $1's daemon on port $2 in a new mount namespace; prints
# the pid that becomes libvirtd (setsid, unshare and bash exec, none forks).
launch() {
	local host=$1 port=$2 i
	write_config "$host" "$port"
	rm -f "$host/libvirtd.pid" "$host/run-mount"
	: >"$host/libvirtd.log"
	echo "$port" >"$host/port"
	local args=()
	for i in "${!k_paths[@]}"; do
		args+=("$host/${k_dirs[$i]}" "${k_paths[$i]}")
	done
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid unshare --mount --propagation private -- /bin/bash -c '
		set -e
		conf=$1 pidfile=$2
		shift 2
		while (($# > 0)); do
			mount --bind "$1" "$2"
			shift 2
		done
		exec libvirtd --listen --config "$conf" --pid-file "$pidfile"
	' libvirt-hosts "$host/etc/libvirtd.conf" "$host/libvirtd.pid" "${args[@]}" \
		</dev/null >"$host/stdout.log" 2>&1 &
	echo $!
}

# Waits until host dir $1's daemon (pid $2) answers on $3; 0 when it does,
# 1 when it died of a port clash (retry), dies otherwise.
wait_up() {
	local host=$1 pid=$2 uri=$3 deadline left
	deadline=$(($(now_ms) + timeout_s * 1000))
	while :; do
		if ! alive "$pid"; then
			if grep -qs 'Address already in use' "$host/libvirtd.log" "$host/stdout.log"; then
				return 1
			fi
			report_failure "$host" "libvirtd (pid $pid) exited before it answered"
		fi
		left=$((deadline - $(now_ms)))
		if ((left <= 0)); then
			report_failure "$host" "libvirtd (pid $pid) did not answer on $uri within ${timeout_s} s"
		fi
		# A connection made while the daemon starts waits until its drivers
		# are up (the QEMU capabilities probe), and one to a port that
		# another program took may never end: each try is bounded (5 s) so
		# that the daemon's death is seen.
		((left < 5000)) || left=5000
		if timeout "$((left / 1000)).$(printf %03d $((left % 1000)))" \
			virsh -q -c "$uri" version >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
}

report_failure() {
	local host=$1 message=$2 file
	{
		echo "libvirt-hosts: ${host##*/}: $message"
		for file in "$host/stdout.log" "$host/libvirtd.log"; do
			if [[ -s $file ]]; then
				echo "--- last lines of $file:"
				tail -n 20 "$file"
			fi
		done
	} >&2
	stop_all "$dir" >/dev/null 2>&1 || true
	exit 1
}

start_all() {
	local n=$2 k host path taken="" line
	[[ $n =~ ^[1-9][0-9]*$ ]] || usage
	((EUID == 0)) || die "needs root (libvirtd's system instance and unshare --mount)"
	local tool
	for tool in libvirtd virsh unshare setsid timeout; do
		command -v "$tool" >/dev/null || die "$tool not found"
	done
	[[ $dir != *[[:space:]]* ]] || die "DIR must not contain white space: $dir"
	for k in $(seq 1 "$n"); do
		if [[ -s $dir/host$k/libvirtd.pid ]] && alive "$(<"$dir/host$k/libvirtd.pid")" &&
			owned_by "$(<"$dir/host$k/libvirtd.pid")" "$dir/host$k"; then
			die "host$k under $dir is running: run '$0 stop $dir' first"
		fi
	done
	for path in "${k_paths[@]}"; do
		mkdir -p "$path"
	done

	local -a pids ports
	local caps=${LIBVIRT_HOSTS_CAPS_CACHE:-}
	for k in $(seq 1 "$n"); do
		host=$dir/host$k
		mkdir -p "$host"
		for path in "${k_dirs[@]}" pool cache/qemu/capabilities; do
			mkdir -p "$host/$path"
		done
		if [[ -n $caps && -d $caps ]]; then
			find "$caps" -maxdepth 1 -name '*.xml' -exec cp -t "$host/cache/qemu/capabilities" {} +
		fi
		ports[k]=$(free_port "$taken")
		taken+=" ${ports[k]}"
		pids[k]=$(launch "$host" "${ports[k]}")
	done

	local started tries uri pid
	started=$(now_ms)
	for k in $(seq 1 "$n"); do
		host=$dir/host$k
		tries=1
		while :; do
			uri="qemu+tcp://127.0.0.1:${ports[k]}/system"
			if wait_up "$host" "${pids[k]}" "$uri"; then
				break
			fi
			((tries < 5)) || report_failure "$host" "no port worked after $tries tries"
			echo "libvirt-hosts: host$k: port ${ports[k]} was taken, trying another" >&2
			ports[k]=$(free_port "$taken")
			taken+=" ${ports[k]}"
			pids[k]=$(launch "$host" "${ports[k]}")
			tries=$((tries + 1))
		done
		pid=$(<"$host/libvirtd.pid")
		[[ $pid == "${pids[k]}" ]] ||
			echo "libvirt-hosts: host$k: pid file says $pid, started ${pids[k]}" >&2
		run_mount_of "$pid" >"$host/run-mount"
		echo "$uri" >"$host/uri"
	done
	if [[ -n $caps ]]; then
		save_caps "$dir/host1/cache/qemu/capabilities" "$caps"
	fi
	: >"$dir/hosts"
	for k in $(seq 1 "$n"); do
		line="host$k $(<"$dir/host$k/uri") $(<"$dir/host$k/libvirtd.pid")"
		echo "$line" >>"$dir/hosts"
		echo "$line"
	done
	echo "libvirt-hosts: $n daemon(s) answered after $(($(now_ms) - started)) ms" >&2
}

# Copies the capabilities cache files of directory $1 into directory $2,
# each atomically (parallel starts may share $2).
save_caps() {
	local file tmp
	mkdir -p "$2"
	for file in "$1"/*.xml; do
		[[ -f $file ]] || continue
		tmp=$(mktemp "$2/.tmp.XXXXXX")
		if ! { cp "$file" "$tmp" && mv -f "$tmp" "$2/${file##*/}"; }; then
			rm -f "$tmp"
		fi
	done
}

# Kills host dir $1's daemon and QEMUs; prints what it killed.
stop_host() {
	local host=$1 pid file name cmd
	local -a victims=()
	# The daemon first, so that it starts nothing more.
	if [[ -s $host/libvirtd.pid ]]; then
		pid=$(<"$host/libvirtd.pid")
		if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ $(cmdline_of "$pid") == *libvirtd* ]] &&
			owned_by "$pid" "$host"; then
			echo "${host##*/}: libvirtd $pid"
			kill_and_wait "$pid"
		fi
	fi
	# QEMUs through the daemon's pid files (they outlive a SIGKILLed daemon).
	for file in "$host"/run/qemu/*.pid; do
		[[ -f $file && ${file##*/} != driver.pid ]] || continue
		name=${file##*/}
		name=${name%.pid}
		pid=$(<"$file") || continue
		if ! [[ $pid =~ ^[0-9]+$ ]] || ! alive "$pid"; then
			continue
		fi
		cmd=$(cmdline_of "$pid")
		if [[ $cmd == *qemu-system* && $cmd == *"guest=$name,"* ]] && owned_by "$pid" "$host"; then
			echo "${host##*/}: qemu $pid ($name)"
			victims+=("$pid")
		fi
	done
	kill_and_wait "${victims[@]}"
	# Anything else still in this host's namespaces (a QEMU whose pid file
	# went, a helper): its /run/libvirt is this host's bind mount.
	victims=()
	local majmin root
	while read -r pid majmin root; do
		if [[ $pid == "$$" ]] || ! is_host_mount "$host" "$majmin $root" || ! alive "$pid"; then
			continue
		fi
		echo "${host##*/}: $(cmdline_of "$pid" | cut -c1-80) ($pid)"
		victims+=("$pid")
	done < <(run_mounts)
	kill_and_wait "${victims[@]}"
	rm -f "$host/libvirtd.pid"
}

stop_all() {
	local host
	[[ -d $1 ]] || return 0
	for host in "$1"/host*; do
		[[ -d $host ]] || continue
		stop_host "$host"
	done
	rm -f "$1/hosts"
}

(($# >= 2)) || usage
dir=$(realpath -m -- "$2")
case $1 in
start)
	(($# == 3)) || usage
	start_all "$dir" "$3"
	;;
stop)
	(($# == 2)) || usage
	stop_all "$dir"
	;;
*) usage ;;
esac
