#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Plays "Install as a service" (README.md) with the unpacked .deb, without touching the
# host: run it under `unshare -m --propagation private` as root. /etc is a copy, /run and
# /var/lib are empty tmpfs, sysusers.d and tmpfiles.d hold only our files. What systemd
# would do for the unit (RuntimeDirectory=, User=, Group=, SupplementaryGroups=) is done
# by hand. Prints "CHECK name rc" lines for the test to read.
# usage: deb_sim.sh UNPACKED_ROOT CONTROL_DIR SCRATCH PORT
set -eu
X=$1 CTL=$2 R=$3 PORT=$4
cp -a /etc "$R/etc"
mount --bind "$R/etc" /etc
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /run
mkdir -p "$R/sysusers" "$R/tmpfiles"
cp "$X/usr/lib/sysusers.d/liaison.conf" "$R/sysusers/"
cp "$X/usr/lib/tmpfiles.d/liaison.conf" "$R/tmpfiles/"
mount --bind "$R/sysusers" /usr/lib/sysusers.d
mount --bind "$R/tmpfiles" /usr/lib/tmpfiles.d

check() { local name=$1; shift; set +e; "$@" >"$R/$name.out" 2>&1; echo "CHECK $name $?"; set -e; }
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --init-groups "$@"; }

check postinst sh "$CTL/postinst" configure
check postinst-again sh "$CTL/postinst" configure
echo "USER $(getent passwd liaison)"
echo "GROUP $(getent group liaison-audit)"
echo "DIR $(stat -c '%n %a %U %G' /etc/liaison /var/lib/liaison | tr '\n' ' ')"
useradd -M -d /nonexistent -G liaison alice
useradd -M -d /nonexistent -G liaison-audit bob
cd /
check init as liaison "$X/usr/bin/liaison" init --id dr.okafor --name "Dr. Chidi Okafor" \
    --role psychiatrist --listen "tcp://127.0.0.1:$PORT"
check check-config as liaison "$X/usr/sbin/liaisond" --check-config
install -d -m 0755 -o liaison -g liaison /run/liaison      # RuntimeDirectory=liaison
(umask 0077; exec setpriv --reuid liaison --regid liaison --init-groups "$X/usr/sbin/liaisond" \
    >"$R/liaisond.log" 2>&1) &
DPID=$!
trap 'kill $DPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S /run/liaison/audit.sock ] && break; sleep 0.1; done
sleep 0.3
echo "SOCK $(stat -c '%n %a %U %G' /run/liaison/control.sock /run/liaison/audit.sock | tr '\n' ' ')"
check alice-status as alice "$X/usr/bin/liaison" status
check alice-card as alice "$X/usr/bin/liaison" card
check alice-audit as alice "$X/usr/bin/liaison" audit log
check bob-audit as bob "$X/usr/bin/liaison" audit verify
check bob-status as bob "$X/usr/bin/liaison" status
kill -TERM $DPID
set +e; wait $DPID; echo "CHECK daemon-exit $?"; set -e
trap - EXIT
