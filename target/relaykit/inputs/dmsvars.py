"""docker-mailserver's environment variables: which relaykit honours, and what it says of
the others, so that nothing a migrating DMS user set is silently lost.

Every variable of DMS's environment documentation is in one of three lists:

- SUPPORTED: relaykit does what DMS does with it (settings.py reads it), or it has no
  effect on either (SMTP_ONLY: relaykit only runs SMTP).
- REFUSED: ignoring it would leave a service the user relies on broken (nobody could log
  in): `relaykit start` refuses to start, saying why.
- IGNORED: a feature of DMS's full mail server that relaykit does not have (mailboxes,
  content filters, reports...). Set to a value that turns the feature on, it is reported
  once at start, with what that means for relayed mail.

`POSTFIX_<name>` variables that are not DMS's own set main.cf parameter <name>
(lower-cased: POSTFIX_MESSAGE_SIZE_LIMIT is message_size_limit), as in other relay images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from relaykit.errors import ConfigError
from relaykit.model.entries import Origin, Override

SUPPORTED = frozenset({
    "OVERRIDE_HOSTNAME", "LOG_LEVEL", "PERMIT_DOCKER", "TZ", "SMTP_ONLY", "SSL_TYPE", "SSL_CERT_PATH",
    "SSL_KEY_PATH", "DEFAULT_RELAY_HOST", "RELAY_HOST", "RELAY_PORT", "RELAY_USER", "RELAY_PASSWORD",
    "ENABLE_OPENDKIM",  # 0: no signing even with keys in opendkim/keys (DMS's meaning)
    # applied as main.cf parameters by the POSTFIX_<name> rule (message_size_limit...)
    "POSTFIX_MESSAGE_SIZE_LIMIT", "POSTFIX_INET_PROTOCOLS", "POSTFIX_MAILBOX_SIZE_LIMIT",
})

_NO_LOGIN = ("relaykit checks submission passwords with Dovecot against postfix-accounts.cf or its "
             "PostgreSQL store only: with this, nobody could log in")
# name -> (values that ask for nothing, why it cannot be honoured); values compared lower-cased
REFUSED: dict[str, tuple[frozenset[str], str]] = {
    "ACCOUNT_PROVISIONER": (frozenset({"", "file"}), _NO_LOGIN),
    "ENABLE_LDAP": (frozenset({"", "0"}), _NO_LOGIN),
    "ENABLE_SASLAUTHD": (frozenset({"", "0"}), _NO_LOGIN),
}

_OFF = frozenset({"", "0"})
_NO_MAILBOX = "relaykit stores no mail (no IMAP/POP3, no local delivery): it only forwards"
_NO_FILTER = "relaykit does not scan mail: it forwards what trusted clients and logged-in users send"
_NO_REPORTS = "no reports or log files: Postfix and relaykit log to the container's output"
_NO_INBOUND = "relaykit takes port 25 mail only from trusted networks (mynetworks), not from the internet"
IGNORED: dict[str, tuple[frozenset[str], str]] = {
    **{name: (frozenset(), _NO_MAILBOX) for name in (
        "DMS_VMAIL_UID", "DMS_VMAIL_GID", "POSTFIX_DAGENT", "DOVECOT_MAILBOX_FORMAT", "DOVECOT_INET_PROTOCOLS",
        "MOVE_SPAM_TO_JUNK", "MARK_SPAM_AS_READ")},
    **{name: (_OFF, _NO_MAILBOX) for name in (
        "ENABLE_POP3", "ENABLE_IMAP", "ENABLE_QUOTAS", "ENABLE_MANAGESIEVE", "ENABLE_FETCHMAIL", "ENABLE_GETMAIL",
        "ENABLE_OAUTH2")},
    **{name: (frozenset(), _NO_MAILBOX) for name in ("FETCHMAIL_POLL", "FETCHMAIL_PARALLEL", "GETMAIL_POLL")},
    **{name: (_OFF, _NO_FILTER) for name in (
        "ENABLE_AMAVIS", "ENABLE_CLAMAV", "ENABLE_SPAMASSASSIN", "ENABLE_SPAMASSASSIN_KAM", "ENABLE_RSPAMD",
        "ENABLE_RSPAMD_REDIS", "ENABLE_POSTGREY")},
    **{name: (frozenset(), _NO_FILTER) for name in (
        "AMAVIS_LOGLEVEL", "CLAMAV_MESSAGE_SIZE_LIMIT", "VIRUSMAILS_DELETE_DELAY", "SPAMASSASSIN_SPAM_TO_INBOX",
        "SA_TAG", "SA_TAG2", "SA_KILL", "SA_SPAM_SUBJECT", "SA_SHORTCIRCUIT_BAYES_SPAM", "SA_SHORTCIRCUIT_BAYES_HAM",
        "RSPAMD_CHECK_AUTHENTICATED", "RSPAMD_GREYLISTING", "RSPAMD_LEARN", "RSPAMD_HFILTER",
        "RSPAMD_HFILTER_HOSTNAME_UNKNOWN_SCORE", "POSTGREY_DELAY", "POSTGREY_MAX_AGE",
        "POSTGREY_AUTO_WHITELIST_CLIENTS", "POSTGREY_TEXT")},
    **{name: (_OFF, _NO_INBOUND) for name in (
        "ENABLE_DNSBL", "ENABLE_OPENDMARC", "ENABLE_POLICYD_SPF", "ENABLE_MTA_STS",
        "POSTFIX_REJECT_UNKNOWN_CLIENT_HOSTNAME")},
    "POSTSCREEN_ACTION": (frozenset(), _NO_INBOUND),
    "ENABLE_FAIL2BAN": (_OFF, "no fail2ban in the container: rate-limit or block clients on the host"),
    "FAIL2BAN_BLOCKTYPE": (frozenset(), "no fail2ban in the container: rate-limit or block clients on the host"),
    "ENABLE_SRS": (_OFF, "no Sender Rewriting Scheme: envelope senders are forwarded unchanged"),
    **{name: (frozenset(), "no Sender Rewriting Scheme: envelope senders are forwarded unchanged")
       for name in ("SRS_SENDER_CLASSES", "SRS_EXCLUDE_DOMAINS", "SRS_SECRET", "SRS_DOMAINNAME")},
    "SPOOF_PROTECTION": (frozenset({"1"}), "relaykit always refuses a logged-in user sending as an address "
                                           "that is not theirs (587/465); port 25 clients in trusted networks "
                                           "may use any sender, as in DMS"),
    "TLS_LEVEL": (frozenset({"", "modern"}), "relaykit requires TLSv1.2 or newer where TLS is required "
                                             "(587/465), as DMS's 'modern'"),
    "SSL_ALT_CERT_PATH": (frozenset(), "one certificate only: SSL_CERT_PATH/SSL_KEY_PATH"),
    "SSL_ALT_KEY_PATH": (frozenset(), "one certificate only: SSL_CERT_PATH/SSL_KEY_PATH"),
    "NETWORK_INTERFACE": (frozenset(), "PERMIT_DOCKER reads every interface of the container"),
    "POSTMASTER_ADDRESS": (frozenset(), "local delivery is disabled: Postfix's notices go nowhere local"),
    "ONE_DIR": (frozenset(), "relaykit keeps no mail state of its own: mount the paths the README lists"),
    "SUPERVISOR_LOGLEVEL": (frozenset(), "no supervisord: `relaykit start` supervises Postfix (see LOG_LEVEL)"),
    "DMS_DEBUG": (frozenset({"", "0"}), "use LOG_LEVEL=debug"),
    "ENABLE_UPDATE_CHECK": (_OFF, "no update check: pull a newer image"),
    "UPDATE_CHECK_INTERVAL": (frozenset(), "no update check: pull a newer image"),
    **{name: (frozenset(), _NO_REPORTS) for name in (
        "PFLOGSUMM_TRIGGER", "PFLOGSUMM_RECIPIENT", "PFLOGSUMM_SENDER", "LOGWATCH_INTERVAL", "LOGWATCH_RECIPIENT",
        "LOGWATCH_SENDER", "REPORT_RECIPIENT", "REPORT_SENDER", "REPORT_INTERVAL", "LOGROTATE_INTERVAL")},
}
# LDAP's own settings, ignored with ENABLE_LDAP (refused when it is on)
_LDAP = ("LDAP_", "DOVECOT_", "SASLAUTHD_")


# DMS config files relaykit does not read, and what that means (the ones it reads are in
# inputs/env.py). A directory entry ends with "/".
IGNORED_FILES = {
    "user-patches.sh": "relaykit does not run it: set Postfix parameters in postfix-main.cf, postfix-master.cf "
                       "or POSTFIX_<name> variables",
    "postfix-send-access.cf": "no sender access table: port 25 takes mail from trusted networks only",
    "postfix-receive-access.cf": "no recipient access table: relaykit delivers nothing locally",
    "postfix-regexp.cf": "no regular-expression aliases: submission logins use postfix-virtual.cf",
    "postfix-regexp-send-only.cf": "no regular-expression aliases: submission logins use postfix-virtual.cf",
    "postfix-aliases.cf": "no local aliases: relaykit delivers nothing locally",
    "postfix-policyd-spf.conf": _NO_INBOUND,
    "dovecot.cf": "Dovecot only checks submission passwords here: its mailbox settings do not apply",
    "dovecot-quotas.cf": _NO_MAILBOX,
    "dovecot-master-accounts.cf": _NO_MAILBOX,
    "fetchmail.cf": _NO_MAILBOX,
    "getmail/": _NO_MAILBOX,
    "rspamd/": _NO_FILTER,
    "amavis.cf": _NO_FILTER,
    "spamassassin-rules.cf": _NO_FILTER,
    "whitelist_clients.local": _NO_FILTER,
}


def audit_files(config_dir: str | os.PathLike) -> tuple[str, ...]:
    """Reports for the DMS config files and directories in `config_dir` that relaykit
    does not read (path: what that means)."""
    try:
        entries = {e.name + ("/" if e.is_dir() else "") for e in os.scandir(config_dir)}
    except OSError:
        return ()
    return tuple(f"{os.path.join(config_dir, name.rstrip('/'))} is not supported and has no effect: "
                 f"{IGNORED_FILES[name]}" for name in sorted(entries) if name in IGNORED_FILES)


def _where(name: str, origins: Mapping[str, str]) -> str:
    return origins.get(name, name)


def audit(env: Mapping[str, str], origins: Mapping[str, str] = {}) -> tuple[str, ...]:
    """The reports for the DMS variables set in `env` that relaykit ignores (one line each);
    ConfigError for one it refuses."""
    reports = []
    for name in sorted(env):
        value = (env[name] or "").strip()
        if not value or name in SUPPORTED:
            continue
        if name in REFUSED:
            harmless, why = REFUSED[name]
            if value.lower() not in harmless:
                raise ConfigError(f"{name}={value} is not supported: {why}", _where(name, origins))
            continue
        if name in IGNORED:
            harmless, why = IGNORED[name]
            if value.lower() not in harmless:
                reports.append(_report(name, value, why, origins))
        elif name.startswith(_LDAP):
            reports.append(_report(name, value, _NO_LOGIN, origins))
    return tuple(reports)


def _report(name: str, value: str, why: str, origins: Mapping[str, str]) -> str:
    where = origins.get(name, name)
    shown = "(hidden)" if any(word in name for word in ("SECRET", "PASS", "_PW")) else value
    return f"{where + ': ' if where != name else ''}{name}={shown} is not supported and has no effect: {why}"


def postfix_params(env: Mapping[str, str], origins: Mapping[str, str] = {}) -> tuple[Override, ...]:
    """`POSTFIX_<name>=value`: main.cf parameter <name> lower-cased (other relay images'
    convention; DMS's POSTFIX_MESSAGE_SIZE_LIMIT and POSTFIX_INET_PROTOCOLS are such names).
    DMS's POSTFIX_ variables that are not parameters are audit()'s."""
    found = []
    for name in sorted(env):
        if not name.startswith("POSTFIX_") or name in IGNORED or name in REFUSED:
            continue
        value = env[name]
        if value is None or value == "":
            continue
        param = name[len("POSTFIX_"):].lower()
        if not param or not param.replace("_", "").isalnum() or not param.isascii():
            raise ConfigError(f"{name}: not a Postfix parameter name", _where(name, origins))
        if "\n" in value:
            raise ConfigError(f"{name}: a parameter value must be one line", _where(name, origins))
        found.append(Override(param, value.strip(), Origin(_where(name, origins))))
    return tuple(found)
