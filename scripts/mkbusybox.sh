#!/usr/bin/env bash
# Make a `busybox` image from the host's static busybox, without any registry.
#
#   scripts/mkbusybox.sh --tar OUT.tar   write the rootfs tarball only
#   scripts/mkbusybox.sh [REF]           import it into the daemon at $DOCKER_HOST
#                                        (default REF busybox:latest)
#
# The rootfs looks like the official image: /bin/busybox plus a symlink per applet in
# /bin, /etc/passwd and /etc/group (root, nobody, ...), /tmp (1777), /root, /home, /var.
# Env: BUSYBOX (default /bin/busybox), DOCKER (default docker).
set -euo pipefail

busybox=${BUSYBOX:-/bin/busybox}
docker=${DOCKER:-docker}

if [ ! -x "$busybox" ]; then
  echo "mkbusybox: $busybox not found (apt-get install -y busybox-static)" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "mkbusybox: $busybox is dynamically linked; a static busybox is needed (busybox-static)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/mkbb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

mkdir -p "$root"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,usr/sbin,var/spool/mail,var/www}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Debian's busybox has no `printenv` applet (the official image's has): add a tiny static
# one, or a shell fallback when no C compiler is around.
cat > "$work/printenv.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
extern char **environ;
int main(int argc, char **argv) {
  int rc = 0;
  if (argc < 2) {
    for (char **e = environ; *e; e++) puts(*e);
    return 0;
  }
  for (int i = 1; i < argc; i++) {
    const char *v = getenv(argv[i]);
    if (v) puts(v); else rc = 1;
  }
  return rc;
}
C
if ! cc -static -Os -s -o "$root/bin/printenv" "$work/printenv.c" 2>/dev/null; then
  cat > "$root/bin/printenv" <<'SH'
#!/bin/sh
[ $# -eq 0 ] && exec env
rc=0
for n; do
  case $n in *[!A-Za-z0-9_]*|'') rc=1; continue;; esac
  if eval "[ -n \"\${$n+x}\" ]"; then eval "printf '%s\\n' \"\$$n\""; else rc=1; fi
done
exit $rc
SH
  chmod 755 "$root/bin/printenv"
fi

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nobody:x:65534:
GROUP
echo 'root:*::0:::::' > "$root/etc/shadow"
chmod 600 "$root/etc/shadow"

tarball=$work/busybox.tar
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 \
  -C "$root" -cf "$tarball" .

if [ "${1:-}" = "--tar" ]; then
  out=${2:?usage: mkbusybox.sh --tar OUT.tar}
  cp "$tarball" "$out"
  exit 0
fi

ref=${1:-busybox:latest}
"$docker" import --change 'CMD ["sh"]' "$tarball" "$ref"
