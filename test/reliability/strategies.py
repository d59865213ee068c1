"""Hypothesis strategies for everything a user can type into relaykit: domains (ASCII,
upper case, IDN, broken), relay hosts (names, IPv4, IPv6, bracketed), ports, users,
passwords, and whole config-file lines mixing valid fields with arbitrary text."""

from __future__ import annotations

from hypothesis import strategies as st

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
ASCII_DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
IDN_DOMAIN = st.builds(
    lambda a, b: f"{a}.{b}",
    st.text(alphabet=st.characters(categories=("Ll", "Lu", "Lo", "Nd")), min_size=1, max_size=8), LABEL)
TRICKY_DOMAINS = [
    "", "@", "@@x.test", "#x.test", "x#.test", "a..b", ".a.test", "-a.test", "a-.test", "a.test.", "a.test..",
    "1.2.3.4", "1.2.3.4.5", "[x.test]", "a b.test", "a\tb", "a\nb.test", "a\rb", "münchen.de", "MÜNCHEN.DE",
    "xn--mnchen-3ya.de", "ß.de", "ｅｘａｍｐｌｅ.com", "\u200b.test", "a\x00.test", "a,b.test", "a:b.test",
    "a/b.test", "a\\b", "a" * 63 + ".test", "a" * 64 + ".test", ("a" * 60 + ".") * 5 + "test", "例え.テスト",
    "xn--.test", "xn--zz.test", "a\x7f.test", "a\u2028b.test", "a\x85.test", "@münchen.de", "a_b.test",
]
DOMAINS = st.one_of(ASCII_DOMAIN, ASCII_DOMAIN.map(str.upper), ASCII_DOMAIN.map(lambda d: "@" + d), IDN_DOMAIN,
                    st.sampled_from(TRICKY_DOMAINS), st.text(max_size=24))

IPV4 = st.tuples(*[st.integers(0, 300)] * 4).map(lambda t: ".".join(map(str, t)))
IPV6 = st.ip_addresses(v=6).map(str)
TRICKY_HOSTS = ["", "[]", "[", "]", "[x.test", "x.test]", "[[x.test]]", "::1", "[::1]", "ipv6:::1", "[ipv6:::1]",
                "2001:db8::25", "[2001:DB8::25]", "1.2.3", "1.2.3.4:25", "[1.2.3.4]:25", "x.test:25",
                "256.1.1.1", "01.2.3.4", "fe80::1%eth0", "localhost", "x.test,y.test", "x y"]
HOSTS = st.one_of(ASCII_DOMAIN, IPV4, IPV6, ASCII_DOMAIN.map(lambda d: f"[{d}]"), IPV6.map(lambda a: f"[{a}]"),
                  IDN_DOMAIN, st.sampled_from(TRICKY_HOSTS), st.text(max_size=20))
PORTS = st.one_of(st.integers(-3, 70000).map(str), st.sampled_from(["", "0", "1", "65535", "65536", "025", " 25",
                                                                   "25 ", "2.5", "+25", "٢٥", "²"]),
                  st.text(max_size=6))
USERS = st.one_of(st.from_regex(r"[A-Za-z0-9._@+=/-]{1,16}", fullmatch=True), st.text(max_size=16),
                  st.sampled_from(["", "a:b", "a b", "#a", "apikey", "ü", "a\nb"]))
PASSWORDS = st.one_of(st.text(max_size=24), st.from_regex(r"[!-~]{1,24}", fullmatch=True),
                      st.sampled_from(["", "p:w", "p#w", "p w", "p\tw", "p\nw", "\\", "$(id)", "'\"", "pässwörd"]))


def _line(fields: list[str], sep: str) -> str:
    return sep.join(fields)


FIELD = st.one_of(DOMAINS, HOSTS, USERS, PASSWORDS, ASCII_DOMAIN.map(lambda d: f"@{d}"),
                  st.builds(lambda h, p: f"[{h}]:{p}", ASCII_DOMAIN, PORTS),
                  st.builds(lambda u, p: f"{u}:{p}", USERS, PASSWORDS))
LINE = st.one_of(
    st.builds(_line, st.lists(FIELD, min_size=0, max_size=4), st.sampled_from([" ", "\t", "  ", " \t"])),
    st.sampled_from(["", "#", "# comment", "   # indented", "\t", "@a.test [r.test]:25 # trailing"]),
    st.text(max_size=40),
)
FILE_TEXT = st.lists(LINE, max_size=8).map("\n".join)
