"""Live reload at 100k lines: the plan after an edit of a few relaymap lines, patched from
the last plan in proportion to the edit. core/plan.build decides every route again (each
pass over 100k keys costs 10-25 ms here: memory, not arithmetic), which was most of an
edit's way to Postfix.

Patched only where each route is decided by its own rule alone (core/routing.py): no
`@.domain` wildcard, no credential keyed by sender, no key given twice. An edit there
that keeps every other input, adds no opt-out, no wildcard, no key already routed
elsewhere, no next-hop list not already in use and no domain RELAY_HOST routes by
default, and lies after every opt-out and the first route of each next-hop list, changes
exactly the edited keys' relayhost_map and sender_transport lines, routes and decisions.
Everything else in the plan (tls_policy, transports and services, checks, warnings)
depends on the distinct next-hop lists in their first-use order, which the edit leaves as
they were. Any other change is planned whole. test/unit/test_replan.py holds every
patched plan against build()'s.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import indexOf, itemgetter

from relaykit.core.plan import Built, build_indexed
from relaykit.core.routetables import SENDER_TRANSPORT
from relaykit.core.routing import ByNexthops
from relaykit.model.entries import ConfigFiles, Rules
from relaykit.model.plan import RELAYHOST_MAP, Plan, Table
from relaykit.model.settings import Settings
from relaykit.record import record, replace

# Every input but the relaymap: one of them changed, and the plan is built whole.
_OTHER_INPUTS = ("credentials", "accounts", "aliases", "relaymap_exists", "sasl_exists", "recipient_rules",
                 "oauth2", "relay_limits")


@record
class Basis:
    """The last plan, its inputs, and what an edit is checked and spliced against."""

    settings: Settings
    files: ConfigFiles
    table_type: str
    plan: Plan
    senders: dict[str, object]  # the relaymap's sender keys (each once), for membership only
    by_hops: dict[tuple, object]  # next-hop list -> the Decision of its routes (the plan's own)
    settled: int  # every opt-out and each next-hop list's first route lie before this rule
    managed: list[str]  # the domains RELAY_HOST routes by default, sorted (empty without)
    patched: bool = False  # this plan was patched (tests check the fast path is taken)


def plan(last: Basis | None, settings: Settings, files: ConfigFiles, table_type: str) -> tuple[Plan, Basis | None]:
    """build(settings, files, table_type), patched from `last` when the edit allows it; and
    the basis for the next call (None: the next plan is built whole)."""
    if last is not None:
        patched = _patch(last, settings, files, table_type)
        if patched is not None:
            return patched.plan, patched
    built = build_indexed(settings, files, table_type)
    return built.plan, _basis(built, settings, files, table_type)


def _basis(built: Built, settings: Settings, files: ConfigFiles, table_type: str) -> Basis | None:
    if built.explicit is None:
        return None
    plan, rules = built.plan, files.relay_rules
    hops = rules.nexthops if isinstance(rules, Rules) else list(map(itemgetter(1), rules))
    # The first rule of each next-hop list (C scans from the start: a few lists, early),
    # and the last opt-out: an edit before either would reorder tls_policy or the tables.
    firsts = []
    for nexthops in built.lists:
        try:
            firsts.append(indexOf(hops, nexthops))
        except ValueError:  # a list only RELAY_HOST's default routes use
            pass
    last_optout = len(hops) - 1 - indexOf(reversed(hops), ()) if plan.optouts else -1
    decisions = plan.decisions  # the Decision of each list's first route (by list, when looked up so)
    by_hops = {hops[i]: decisions.by_hops[hops[i]] if isinstance(decisions, ByNexthops)
               else decisions[rules[i].sender] for i in firsts}
    return Basis(settings, files, table_type, plan, built.explicit, by_hops,
                 max(firsts + [last_optout]) + 1, built.managed or [])


def _in_sorted(items: list[str], item: str) -> bool:
    at = bisect_left(items, item)
    return at < len(items) and items[at] == item


def _patch(last: Basis, settings: Settings, files: ConfigFiles, table_type: str) -> Basis | None:
    """The next basis, its plan patched; None when the edit needs a whole build."""
    edit = files.relay_edit
    if (edit is None or edit.before is not last.files.relay_rules or edit.start < last.settled
            or table_type != last.table_type or settings != last.settings
            or any(getattr(files, name) != getattr(last.files, name) for name in _OTHER_INPUTS)):
        return None
    rules, start = files.relay_rules, edit.start
    removed = edit.before[start:start + edit.removed]
    added = rules[start:start + edit.added]
    if rules is edit.before:  # the same file
        return replace(last, files=files, patched=True)
    senders, by_hops, managed = last.senders, last.by_hops, last.managed
    gone = [rule.sender for rule in removed]
    keys = [rule.sender for rule in added]
    if (len(set(keys)) < len(keys)
            or any(key in senders and key not in gone for key in keys)  # routed elsewhere
            or any(rule.nexthops not in by_hops or rule.sender[:2] == "@." for rule in added)  # opt-out, new list
            or (managed and any(key[:1] == "@" and _in_sorted(managed, key[1:]) for key in (*gone, *keys)))):
        return None

    plan = last.plan
    before = start - len(plan.optouts)  # the routes before the edit: every opt-out lies there
    explicit = len(edit.before) - len(plan.optouts)  # then RELAY_HOST's default routes
    decisions = [by_hops[rule.nexthops] for rule in added]
    relay_lines = tuple(f"{rule.sender} {','.join(rule.nexthops)}" for rule in added)
    transport_lines = tuple(f"{key} {decision.table_value}" for key, decision in zip(keys, decisions))

    def spliced(table: Table, at: int, lines: tuple[str, ...]) -> Table:
        return replace(table, lines=table.lines[:at] + lines + table.lines[at + len(removed):])

    tables = tuple(spliced(t, before, relay_lines) if t.name == RELAYHOST_MAP
                   else spliced(t, len(plan.optouts) + before, transport_lines) if t.name == SENDER_TRANSPORT
                   else t for t in plan.tables)
    routes = plan.routes[:before] + added + rules[start + edit.added:] + plan.routes[explicit:]
    if isinstance(plan.decisions, ByNexthops):  # looked up by next hops: the routes change
        by_sender = ByNexthops(routes, plan.decisions.by_hops)
    else:
        by_sender = dict(plan.decisions)  # its order has no meaning (model/plan.py)
        for key in gone:
            del by_sender[key]
        by_sender.update(zip(keys, decisions))
    senders = senders.copy() if isinstance(senders, dict) else dict.fromkeys(senders)  # core/plan.RulesByKey
    for key in gone:
        del senders[key]
    senders.update(zip(keys, added))
    patched = replace(plan, routes=routes, tables=tables, decisions=by_sender)
    return Basis(settings, files, table_type, patched, senders, by_hops, last.settled, managed, patched=True)
