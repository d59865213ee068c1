#!/bin/sh
# Run the image's layout with a READ-ONLY root filesystem, as `docker run --read-only`
# with compose.yaml's mounts would: in a private mount namespace (unshare --mount), the
# only writable places are the ones the Dockerfile names, bound from a scratch dir:
#   /etc/postfix  /var/spool/postfix (queue volume)  /var/lib/postfix  /tmp  /run
#   /tmp/docker-mailserver (the config volume)
# Then: relaykit configure (default paths), postfix start, relaykit health, optionally
# submit one message, wait until the queue is empty or holds it, postfix stop.
#   usage: readonly_root.sh <scratch> <repo> <bin> <config dir> <send:0|1> <wait:empty|queued>
set -eu
S=$1 REPO=$2 BIN=$3 CONFIG=$4 SEND=$5 WAIT=$6
mkdir -p "$S/etc" "$S/spool" "$S/lib" "$S/tmp/docker-mailserver" "$S/run"
if [ ! -f "$S/etc/main.cf" ]; then  # first start: the image's content of /etc/postfix
  cp -a /etc/postfix/. "$S/etc/"
  cp "$REPO/target/postfix/main.cf" "$REPO/target/postfix/master.cf" "$S/etc/"
  cp -a /var/lib/postfix/. "$S/lib/"
  chown postfix:postfix "$S/lib"
fi
mount --bind "$S/etc" /etc/postfix
mount --bind "$S/spool" /var/spool/postfix
mount --bind "$S/lib" /var/lib/postfix
mount --bind "$CONFIG" "$S/tmp/docker-mailserver"
mount --bind "$S/run" /run
# The project and its virtualenv may live under /tmp (a CI clone, a scratch venv): make
# them visible again inside the new /tmp before it hides the old one.
for keep in "$REPO" "$(dirname "$BIN")"; do
  case $keep in /tmp/*)
    mkdir -p "$S/tmp/${keep#/tmp/}"
    mount --bind "$keep" "$S/tmp/${keep#/tmp/}" ;;
  esac
done
mount --rbind "$S/tmp" /tmp  # last: it hides $S, which lives under /tmp
mount -o remount,bind,ro /
if touch /etc/relaykit-probe /usr/relaykit-probe 2>/dev/null; then echo "root is writable"; exit 3; fi
echo "root filesystem is read-only"
unset MAIL_CONFIG RELAYKIT_CONFIG_DIR
# test-only: loopback, quick retries, a log file we can read
postconf -e inet_interfaces=127.0.0.1 inet_protocols=ipv4 queue_run_delay=1s \
  minimal_backoff_time=1s maximal_backoff_time=2s maillog_file=/var/spool/postfix/maillog
"$BIN/relaykit" configure
trap 'postfix stop >/dev/null 2>&1 || true' EXIT
script -qec "postfix start" /dev/null
for i in $(seq 50); do "$BIN/relaykit" health -v && break; sleep 0.2; done
if [ "$SEND" = 1 ]; then
  "$BIN/python" - <<'PY'
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "alice@shop.example", "bob@example.net", "read-only root"
m.set_content("hello\n")
with smtplib.SMTP("127.0.0.1", 25, timeout=20) as s:
    s.send_message(m)
print("submitted")
PY
fi
[ "$WAIT" = empty ] && postqueue -f
for i in $(seq 100); do
  n=$(postqueue -j | wc -l)
  if [ "$WAIT" = empty ] && [ "$n" = 0 ]; then break; fi
  if [ "$WAIT" = queued ] && [ "$n" != 0 ] && grep -q "status=deferred" /var/spool/postfix/maillog; then break; fi
  sleep 0.2
done
echo "queue: $(postqueue -j | wc -l) message(s)"
postfix stop
trap - EXIT
