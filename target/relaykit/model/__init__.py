"""Values only: next hops, routes, logins, tables, services, plans, settings. Imports nothing but
relaykit's foundation (errors, secret): every other layer reads these."""
