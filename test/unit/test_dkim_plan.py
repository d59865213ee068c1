"""core/dkim.py: OpenDKIM's files and Postfix's milter parameters for the keys found."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaykit.core import dkim
from relaykit.errors import ConfigError
from relaykit.inputs.dmsfiles import load_dkim_keys
from relaykit.model.entries import DkimKey


def test_files_sign_each_keyed_domain_for_trusted_networks():
    keys = (DkimKey("one.example", "s1", "/cfg/opendkim/keys/one.example/s1.private"),)
    files = dkim.files(Path("/run/dk"), keys, ("127.0.0.1", "10.0.0.0/8"), "opendkim")
    assert files.texts["KeyTable"] == "s1._domainkey.one.example one.example:s1:/run/dk/keys/one.example.s1.private\n"
    assert files.texts["SigningTable"] == "*@one.example s1._domainkey.one.example\n"
    assert files.texts["InternalHosts"] == "127.0.0.1\n::1\n10.0.0.0/8\n"
    assert "Socket local:/run/dk/run/opendkim.sock" in files.texts["opendkim.conf"]
    assert files.keys == {"one.example.s1.private": "/cfg/opendkim/keys/one.example/s1.private"}
    assert dkim.plan(Path("/run/dk"), "lmdb").params["smtpd_milters"] == "unix:/run/dk/run/opendkim.sock"
    assert dkim.signing_key(keys, "A@One.example") == keys[0] and dkim.signing_key(keys, "a@two.example") is None


def test_keys_are_found_in_dms_layout_one_per_domain(tmp_path):
    (tmp_path / "opendkim" / "keys" / "one.example").mkdir(parents=True)
    (tmp_path / "opendkim" / "keys" / "one.example" / "mail.private").write_text("key")
    (tmp_path / "opendkim" / "keys" / "one.example" / "mail.txt").write_text("record")
    assert [(k.domain, k.selector) for k in load_dkim_keys(tmp_path)] == [("one.example", "mail")]
    (tmp_path / "opendkim" / "keys" / "one.example" / "old.private").write_text("key")
    with pytest.raises(ConfigError, match="one key per domain"):
        load_dkim_keys(tmp_path)
