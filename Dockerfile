# relaykit: Postfix that relays outbound mail through SES, Mailgun, SendGrid, a smarthost...
# chosen by sender, configured like docker-mailserver (same env, same files, same `setup`).
#
# Every build step is in target/install.sh, which CI also runs on a fresh machine
# (.ci/run): what this image gets is tested on every CI run. Keep this file to COPY + RUN.
FROM debian:12-slim

COPY . /usr/src/relaykit
RUN PREFIX=/opt/relaykit SRC=/usr/src/relaykit PRUNE=1 sh /usr/src/relaykit/target/install.sh \
 && rm -rf /usr/src/relaykit

# The same defaults as the code, spelled out for `docker inspect`.
ENV MAIL_CONFIG=/etc/postfix \
    RELAYKIT_CONFIG_DIR=/tmp/docker-mailserver \
    LOG_LEVEL=info

# The DMS config directory (postfix-relaymap.cf, postfix-sasl-password.cf, ...) and the
# mail queue: mail accepted but not yet relayed survives a restart or an upgrade.
VOLUME ["/tmp/docker-mailserver", "/var/spool/postfix"]

# 25: SMTP from trusted networks (PERMIT_NETWORKS / PERMIT_DOCKER); 587 (STARTTLS) and
# 465 (implicit TLS): submission with login, when ENABLE_SUBMISSION is set.
EXPOSE 25 587 465

# `relaykit start` stops Postfix on SIGTERM with `postfix stop`: the queue stays on disk
# (nothing is flushed away) and is delivered after the next start.
STOPSIGNAL SIGTERM

# A real probe: `postfix status`, then a 220 greeting and 250 to EHLO from the listener.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["relaykit", "health"]

# Runs with a read-only root filesystem (`docker run --read-only`, compose.yaml) as long as
# these stay writable: /etc/postfix (relaykit writes main.cf and its tables there),
# /var/spool/postfix (queue), /var/lib/postfix (TLS cache, locks), /tmp, /run, and the
# config directory when `setup relay ...` should edit it.
#
# PID 1 is tini: it reaps orphaned processes and passes SIGTERM on. The entrypoint runs
# the server by default and any other command as given:
#   docker run --rm relaykit setup relay check    docker run --rm relaykit relaykit --version
ENTRYPOINT ["tini", "--", "relaykit-entrypoint"]
CMD ["start"]
