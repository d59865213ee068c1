"""PostgreSQL store timings: `setup relay add-domain` against the database, and one
Postfix lookup (postmap -q, a new process and connection each time) through pgsql:.

    test/netns.sh .venv/bin/python bench/pgsql_store.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from harness.postfix_instance import PostfixInstance  # noqa: E402
from harness.postgres import PostgresServer  # noqa: E402

BIN = Path(sys.executable).parent


def timed(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        subprocess.run([c.replace("{i}", str(i)) for c in command], env=env, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(name: str, samples: list[float]) -> None:
    print(f"{name:48s} median {statistics.median(samples):6.1f} ms   p90 "
          f"{sorted(samples)[int(len(samples) * 0.9)]:6.1f} ms   (n={len(samples)})")


def main() -> None:
    root = Path(tempfile.mkdtemp())
    server = PostgresServer(root / "pg").create().start()
    try:
        db = server.database()
        postfix = PostfixInstance(root / "postfix").create()
        env = {**os.environ, "RELAYKIT_DATABASE_URL": server.url(db), "MAIL_CONFIG": str(postfix.config_dir),
               "RELAYKIT_CONFIG_DIR": str(root / "config")}
        subprocess.run([str(BIN / "relaykit"), "db", "upgrade"], env=env, check=True, capture_output=True)
        # a realistic size: 10,000 domains
        server.sql("INSERT INTO relaykit.domains (name) SELECT 'bulk' || g || '.test' FROM generate_series(1, 10000) g", db)
        report("setup relay add-domain (database)", timed([str(BIN / "setup"), "relay", "add-domain", "d{i}.test",
                                                           "relay.test", "587"], env, 30))
        file_env = {k: v for k, v in env.items() if k != "RELAYKIT_DATABASE_URL"}
        report("setup relay add-domain (files)", timed([str(BIN / "setup"), "relay", "add-domain", "d{i}.test",
                                                        "relay.test", "587"], file_env, 30))
        subprocess.run([str(BIN / "relaykit"), "configure"], env=env, check=True, capture_output=True)
        table = f"pgsql:{postfix.config_dir / 'pgsql-sender-relays.cf'}"
        report("postmap -q @d7.test (pgsql, new connection)",
               timed(["postmap", "-c", str(postfix.config_dir), "-q", "@d7.test", table], env, 30))
        texthash = root / "t"
        texthash.write_text("@d7.test [relay.test]:587\n")
        report("postmap -q @d7.test (texthash, for scale)",
               timed(["postmap", "-c", str(postfix.config_dir), "-q", "@d7.test", f"texthash:{texthash}"], env, 30))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
