#!/bin/bash
# Builds the tern .deb with cargo-deb and proves it on this machine: contents, install, the
# installed binary and configuration, the system user, permissions, the unit (systemd-analyze
# verify and security), reinstall keeping a changed conffile, remove, purge (nothing left),
# and lintian. Needs root (it installs and purges the package `tern`); idempotent: a `tern`
# package left by an earlier run is purged first, and the package is purged on any exit.
set -euo pipefail

cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAILED: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
	local what="$1"; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
die() { echo "ci-deb: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs and purges the tern package)"
export DEBIAN_FRONTEND=noninteractive

purge_tern() {
	if dpkg-query -W -f='${Status}' tern 2>/dev/null | grep -q 'installed\|config-files'; then
		dpkg -P tern >/dev/null
	fi
}
trap purge_tern EXIT

apt_install() { # apt_install COMMAND PACKAGE
	command -v "$1" >/dev/null && return 0
	apt-get install -y -qq "$2" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null
	}
}
apt_install lintian lintian
apt_install man man-db
apt_install systemd-analyze systemd
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
	cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

echo "== purge a tern package left by an earlier run"
purge_tern

echo "== build"
mkdir -p target/debian
DEB=target/debian/tern_ci.deb
rm -f "$DEB"
# --strip: the release profile keeps line tables for profiling; the package ships none.
cargo deb --locked --strip --output "$DEB"
dpkg-deb --info "$DEB"

echo "== contents"
LISTING=$(dpkg-deb -c "$DEB")
echo "$LISTING"
listed() { # listed MODE PATH
	echo "$LISTING" | awk -v m="$1" -v p="./$2" '$1 == m && ($2 == "0/0" || $2 == "root/root") && $6 == p' | grep -q .
}
check "binary /usr/bin/tern" listed -rwxr-xr-x usr/bin/tern
check "conffile /etc/tern/turnserver.conf (0640)" listed -rw-r----- etc/tern/turnserver.conf
check "unit /lib/systemd/system/tern.service" listed -rw-r--r-- lib/systemd/system/tern.service
check "logrotate /etc/logrotate.d/tern" listed -rw-r--r-- etc/logrotate.d/tern
check "man page tern(8)" listed -rw-r--r-- usr/share/man/man8/tern.8.gz
check "README.Debian" listed -rw-r--r-- usr/share/doc/tern/README.Debian
CONFFILES=$(dpkg-deb --info "$DEB" conffiles)
check "conffiles list turnserver.conf and logrotate" \
	test "$(echo "$CONFFILES" | sort | tr '\n' ' ')" = "/etc/logrotate.d/tern /etc/tern/turnserver.conf "
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $DEPENDS"
check "Depends computed (libc6 version from the binary)" grep -Eq '(^|, )libc6 \(>= [0-9.]+\)' <<<"$DEPENDS"
check "Depends adduser (postinst creates the user)" grep -Eq '(^|, )adduser(,|$)' <<<"$DEPENDS"

echo "== install"
dpkg -i "$DEB"
VERSION_OUT=$(/usr/bin/tern --version)
echo "$VERSION_OUT"
check "tern --version" test "$VERSION_OUT" = "tern $(dpkg-deb -f "$DEB" Version | sed 's/-[^-]*$//')"

# As installed the configuration must refuse to start for one reason only: no credentials.
set +e
REPORT=$(runuser -u tern -- /usr/bin/tern check-config /etc/tern/turnserver.conf)
CODE=$?
set -e
echo "$REPORT"
check "check-config exits 1 on the installed file" test "$CODE" = 1
check "the only problem is the missing authentication" \
	grep -q '^# 1 error(s), 0 warning(s)$' <<<"$REPORT"
check "it says tern does not run an open relay" \
	grep -q '^error: .*no authentication is configured, and tern does not run an open relay' <<<"$REPORT"

PASSWD=$(getent passwd tern || true)
echo "passwd: $PASSWD"
check "system user tern, no login, no home" \
	grep -Eq '^tern:x:[0-9]+:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$' <<<"$PASSWD"
check "system group tern" getent group tern
check "tern's primary group is tern" test "$(id -gn tern)" = tern
check "/etc/tern is 750 root:tern" test "$(stat -c '%a %U %G' /etc/tern)" = "750 root tern"
check "turnserver.conf is 640 root:tern" \
	test "$(stat -c '%a %U %G' /etc/tern/turnserver.conf)" = "640 root tern"
check "others cannot read the configuration" \
	bash -c '! runuser -u nobody -- cat /etc/tern/turnserver.conf >/dev/null 2>&1'
check "unit enabled" test -L /etc/systemd/system/multi-user.target.wants/tern.service
if [ -d /run/systemd/system ]; then
	check "unit not started" bash -c '! systemctl is-active --quiet tern.service'
fi

echo "== unit"
check "systemd-analyze verify" systemd-analyze verify /lib/systemd/system/tern.service
SECURITY=$(systemd-analyze security --offline=yes /lib/systemd/system/tern.service 2>/dev/null || true)
SCORE=$(sed -n 's/.*Overall exposure level for tern.service: \([0-9.]*\).*/\1/p' <<<"$SECURITY")
echo "systemd-analyze security: exposure ${SCORE:-unknown} (0 = most restricted, 10 = unsafe)"
check "exposure level at most 2.5" awk -v s="$SCORE" 'BEGIN { exit !(s != "" && s <= 2.5) }'

echo "== reinstall keeps an edited configuration and its permissions"
sed -i 's/^#use-auth-secret$/use-auth-secret/; s/^#static-auth-secret=/static-auth-secret=/; s/^#realm=/realm=/' \
	/etc/tern/turnserver.conf
dpkg -i --force-confold "$DEB"
check "edited conffile kept" grep -q '^use-auth-secret$' /etc/tern/turnserver.conf
check "still 640 root:tern" test "$(stat -c '%a %U %G' /etc/tern/turnserver.conf)" = "640 root tern"
check "the edited configuration passes check-config --strict" \
	runuser -u tern -- /usr/bin/tern check-config /etc/tern/turnserver.conf --strict

echo "== lintian"
if lintian --fail-on error --display-info "$DEB"; then
	pass "lintian: no errors"
else
	fail "lintian reported errors"
fi

echo "== remove"
dpkg -r tern
check "binary removed" test ! -e /usr/bin/tern
check "unit removed" test ! -e /lib/systemd/system/tern.service
check "configuration kept after remove" test -e /etc/tern/turnserver.conf
check "user kept after remove" getent passwd tern

echo "== purge"
dpkg -P tern
check "package gone" bash -c '! dpkg-query -W tern >/dev/null 2>&1'
check "user gone" bash -c '! getent passwd tern'
check "group gone" bash -c '! getent group tern'
for path in /etc/tern /var/log/tern /etc/logrotate.d/tern /usr/share/doc/tern \
	/usr/share/man/man8/tern.8.gz /etc/systemd/system/multi-user.target.wants/tern.service \
	/var/lib/systemd/deb-systemd-helper-enabled/tern.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/tern.service; do
	check "no $path" test ! -e "$path" -a ! -L "$path"
done

echo "ci-deb: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
