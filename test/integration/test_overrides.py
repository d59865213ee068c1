"""DMS's Postfix overrides (postfix-main.cf, postfix-master.cf) and POSTFIX_<name>
variables, applied by the real `relaykit configure` to a real Postfix config: applied
after relaykit's settings, refused where relaykit owns the parameter, checked by Postfix
first, and undone when the line goes."""

from __future__ import annotations

import json

RELAY = {"DEFAULT_RELAY_HOST": "[relay.example]:587"}


def test_postfix_main_cf_lines_are_applied_with_continuations_and_comments(env):
    env.vars.update(RELAY)
    env.write("postfix-main.cf", "# mine\nsmtpd_helo_required = no\n"
              "smtpd_client_restrictions = permit_mynetworks,\n    reject\n\ndisable_vrfy_command=no\n")
    env.configure()
    assert env.postfix.explicit("smtpd_helo_required") == "no"
    assert env.postfix.explicit("smtpd_client_restrictions") == "permit_mynetworks, reject"
    assert env.postfix.explicit("disable_vrfy_command") == "no"
    assert env.postfix.explicit("relayhost") == "[relay.example]:587"  # relaykit's own stay


def test_a_removed_override_gives_back_the_value_it_replaced(env):
    assert env.postfix.explicit("smtputf8_enable") == "no"  # the image's main.cf
    env.write("postfix-main.cf", "smtputf8_enable = yes\nbounce_queue_lifetime = 1d\n")
    env.configure()
    assert env.postfix.explicit("smtputf8_enable") == "yes"
    assert env.postfix.explicit("bounce_queue_lifetime") == "1d"
    env.write("postfix-main.cf", "")
    env.configure()
    assert env.postfix.explicit("smtputf8_enable") == "no"
    assert env.postfix.explicit("bounce_queue_lifetime") is None


def test_postfix_variables_set_parameters_and_the_file_wins(env):
    env.write("postfix-main.cf", "inet_protocols = ipv4\n")
    env.configure(POSTFIX_MESSAGE_SIZE_LIMIT="20480000", POSTFIX_INET_PROTOCOLS="all",
                  POSTFIX_delay_warning_time="4h")
    assert env.postfix.explicit("message_size_limit") == "20480000"
    assert env.postfix.explicit("delay_warning_time") == "4h"
    assert env.postfix.explicit("inet_protocols") == "ipv4"  # DMS: postfix-main.cf comes last


def test_a_parameter_relaykit_owns_is_refused_at_its_line_and_nothing_changes(env):
    env.vars.update(RELAY)
    env.configure()
    before = (env.postfix.config_dir / "main.cf").read_text()
    path = env.write("postfix-main.cf", "message_size_limit = 1000000\nrelayhost = [evil.example]:25\n"
                     "smtp_sasl_password_maps = hash:/tmp/x\nmynetworks = 0.0.0.0/0\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"{path}:2: relayhost cannot be overridden: use DEFAULT_RELAY_HOST" in result.stderr
    assert f"{path}:3: smtp_sasl_password_maps cannot be overridden" in result.stderr
    assert f"{path}:4: mynetworks cannot be overridden: use PERMIT_NETWORKS" in result.stderr
    assert (env.postfix.config_dir / "main.cf").read_text() == before


def test_a_parameter_relaykit_sets_in_this_configuration_is_refused(env):
    result = env.run("relaykit", "configure", OVERRIDE_HOSTNAME="mail.example.com",
                     POSTFIX_MYHOSTNAME="other.example.com")
    assert result.returncode == 1
    assert "POSTFIX_MYHOSTNAME: myhostname cannot be overridden: OVERRIDE_HOSTNAME sets it" in result.stderr


def test_unknown_names_bad_values_and_undefined_references_are_refused(env):
    path = env.write("postfix-main.cf", "mesage_size_limit = 10\nmessage_size_limit = 10M\n"
                     "smtpd_helo_required = maybe\nsmtpd_banner = $myhostnme ESMTP\n"
                     "my_banner_name = relay\nsmtp_helo_name = $my_banner_name\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"{path}:1: mesage_size_limit is not a parameter of this Postfix" in result.stderr
    assert f"{path}:2: message_size_limit = 10M: must be a whole number" in result.stderr
    assert f"{path}:3: smtpd_helo_required = maybe: must be yes or no" in result.stderr
    assert "my_banner_name" not in result.stderr  # a parameter of one's own, used as $name
    env.write("postfix-main.cf", "smtpd_banner = $myhostnme ESMTP\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"{path}:1: Postfix: undefined parameter myhostnme" in result.stderr


def test_postfix_itself_refuses_a_bad_global_value_before_anything_is_applied(env):
    before = (env.postfix.config_dir / "main.cf").read_text()
    result = env.run("relaykit", "configure", POSTFIX_INET_PROTOCOLS="ipv5")
    assert result.returncode == 1
    assert "POSTFIX_INET_PROTOCOLS: Postfix refuses it:" in result.stderr and "ipv5" in result.stderr
    assert (env.postfix.config_dir / "main.cf").read_text() == before


def test_postfix_master_cf_sets_a_service_parameter_and_removing_it_restores(env):
    service = f"127.0.0.1:{env.postfix.smtpd_port}/inet"
    env.write("postfix-master.cf", f"# DMS syntax\n{service}/smtpd_client_connection_count_limit=7\n"
              f"{service}/syslog_name=postfix/port25\n")
    env.configure()
    params = env.postfix.run("postconf", "-P").stdout
    assert f"{service}/smtpd_client_connection_count_limit = 7" in params
    assert f"{service}/syslog_name = postfix/port25" in params
    env.write("postfix-master.cf", "")
    env.configure()
    assert "smtpd_client_connection_count_limit" not in env.postfix.run("postconf", "-P").stdout


def test_postfix_master_cf_refuses_bad_lines_with_their_line(env):
    path = env.write("postfix-master.cf", "submission/inet/smtpd_banner=two words\n"
                     "nosuch/inet/smtpd_banner=x\nrelaykit_smtps/unix/smtp_tls_wrappermode=no\n"
                     "smtp/unix/smtp_sasl_password_maps=hash:/tmp/x\nnot a line\n")
    env.vars.update({"DEFAULT_RELAY_HOST": "[relay.example]:465"})
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"{path}:1: a master.cf parameter value cannot hold whitespace" in result.stderr
    assert f"{path}:5: not a postfix-master.cf `service/type/parameter=value` line" in result.stderr
    env.write("postfix-master.cf", "nosuch/inet/smtpd_banner=x\nrelaykit_smtps/unix/smtp_tls_wrappermode=no\n"
              "smtp/unix/smtp_sasl_password_maps=hash:/tmp/x\n")
    result = env.run("relaykit", "configure")
    assert f"{path}:1: there is no service nosuch/inet in master.cf" in result.stderr
    assert f"{path}:2: smtp_tls_wrappermode cannot be overridden" in result.stderr
    assert f"{path}:3: smtp_sasl_password_maps cannot be overridden" in result.stderr


def test_submission_service_overrides_join_relaykits_entry_and_cannot_loosen_it(env):
    env.write("postfix-accounts.cf", "jane@shop.example|{SHA512-CRYPT}$6$abc$def\n")
    env.vars.update({"ENABLE_SUBMISSION": "1", "RELAYKIT_DOVECOT_DIR": str(env.config_dir / "dovecot")})
    env.write("postfix-master.cf", "submission/inet/smtpd_client_connection_count_limit=5\n")
    env.configure()
    entry = env.postfix.run("postconf", "-M", "submission/inet").stdout
    assert "-o smtpd_client_connection_count_limit=5" in entry and "reject_sender_login_mismatch" in entry
    again = env.run("relaykit", "configure", LOG_LEVEL="debug")
    assert "changed:" not in again.stderr  # stable: no rewrite, no reload on every start
    path = env.write("postfix-master.cf", "submission/inet/smtpd_sender_restrictions=permit\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"{path}:1: smtpd_sender_restrictions cannot be overridden: relaykit sets it for submission/inet" \
        in result.stderr


def test_the_state_records_overrides_and_their_replaced_values(env):
    env.write("postfix-main.cf", "smtputf8_enable = yes\n")
    env.configure()
    state = json.loads((env.postfix.config_dir / "relaykit.state").read_text())
    assert state["params"]["smtputf8_enable"] == "yes"
    assert state["replaced"] == {"smtputf8_enable": "no"}


def test_setup_relay_check_lists_overrides_and_reports_their_problems(env):
    env.write("postfix-main.cf", "message_size_limit = 20480000\n")
    env.write("user-patches.sh", "#!/bin/sh\n")
    result = env.run("setup", "relay", "check", POSTFIX_delay_warning_time="4h")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "postfix-main.cf:1: message_size_limit = 20480000" in out
    assert "POSTFIX_delay_warning_time: delay_warning_time = 4h" in out
    assert "user-patches.sh is not supported and has no effect: relaykit does not run it" in out
    path = env.write("postfix-main.cf", "relayhost = [x.example]\n")
    result = env.run("setup", "relay", "check")
    assert result.returncode == 1
    assert f"{path}:1: relayhost cannot be overridden" in result.stdout + result.stderr


def test_dms_variables_relaykit_ignores_are_reported_once_and_refused_ones_stop_it(env):
    result = env.configure(ENABLE_CLAMAV="1", ENABLE_POP3="0", SPOOF_PROTECTION="0", POSTFIX_DAGENT="lmtp:x:24",
                           ONE_DIR="1")
    lines = [line for line in result.stderr.splitlines() if "is not supported" in line]
    assert len(lines) == 4, result.stderr
    assert any(line.count("ENABLE_CLAMAV") == 1 and "does not scan mail" in line for line in lines)
    assert not any("ENABLE_POP3" in line for line in lines)  # off: nothing is lost
    result = env.run("relaykit", "configure", ACCOUNT_PROVISIONER="LDAP")
    assert result.returncode == 1
    assert "ACCOUNT_PROVISIONER: ACCOUNT_PROVISIONER=LDAP is not supported" in result.stderr
