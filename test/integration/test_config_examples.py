"""Every setup in config-examples/ (and compose.yaml, the Kubernetes manifests) configures
a scratch Postfix cleanly with the real `relaykit configure`, and routes as it says."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config-examples"
SECRET = "s3cret-from-a-secret-file"

SES_EU = "[email-smtp.eu-west-1.amazonaws.com]:587"
MAILGUN = "[smtp.mailgun.org]:587"
# sender -> (relay, login) that `setup relay list --json` must show for each example.
EXPECTED = {
    "amazon-ses-587": {"@eu.example.com": ("[email-smtp.eu-central-1.amazonaws.com]:587", "AKIAEXAMPLEFRANKFURT"),
                       "*": (SES_EU, "AKIAEXAMPLEEXAMPLE12")},
    "amazon-ses-465": {"*": ("[email-smtp.us-east-1.amazonaws.com]:465", "AKIAEXAMPLEEXAMPLE12")},
    "mailgun": {"@example.org": (MAILGUN, "postmaster@mg.example.com"),
                "@mg.example.com": (MAILGUN, "postmaster@mg.example.com")},
    "sendgrid": {"*": ("[smtp.sendgrid.net]:587", "apikey")},
    "microsoft-365": {"*": ("[smtp.office365.com]:587", "relay@corp.example.com")},
    "gmail": {"*": ("[smtp.gmail.com]:587", "you@gmail.com")},
    "split-routing": {"@shop.example": (SES_EU, "AKIAEXAMPLESHOP"),
                      "@news.example": (MAILGUN, "postmaster@news.example"),
                      "@lab.example": ("direct", None)},
}
DIRECTORIES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name not in ("kubernetes", "monitoring"))


def _routes(env) -> dict[str, tuple[str, str | None]]:
    result = env.run("setup", "relay", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {row["sender"]: (",".join(row["relays"]) or "direct", row["user"]) for row in json.loads(result.stdout)}


def test_every_example_directory_has_expectations():
    assert DIRECTORIES == sorted(EXPECTED)


@pytest.mark.parametrize("name", DIRECTORIES)
def test_example_configures_cleanly_and_routes_as_documented(env, tmp_path, name):
    for path in (EXAMPLES / name).iterdir():
        shutil.copy(path, env.config_dir / path.name)
    # *_FILE variables point at /run/secrets/... in a container: a real file here
    # (real environment variables win over relaykit.env).
    secret = tmp_path / "relay_password"
    secret.write_text(SECRET + "\n")
    text = (env.config_dir / "relaykit.env").read_text()
    env.vars.update({line.split("=")[0]: str(secret) for line in text.splitlines() if "_FILE=" in line})
    # compose.yaml sets RELAY_PASSWORD_FILE: every password example must work with it
    # (OAuth2 ones have no RELAY_USER: compose.yaml says to drop it then)
    oauth2 = env.config_dir / "postfix-oauth2.cf"
    if oauth2.exists():  # its *_file= paths are /run/secrets/... in a container
        oauth2.write_text(re.sub(r"=/run/secrets/\S+", f"={secret}", oauth2.read_text()))
    else:
        env.vars["RELAY_PASSWORD_FILE"] = str(secret)

    check = env.run("setup", "relay", "check")
    assert check.returncode == 0, check.stderr
    result = env.configure()
    # OAuth2: no network here, so the token request fails: logged, and that mail waits
    errors = [line for line in result.stderr.lower().splitlines() if "error" in line]
    assert all("no token from https://" in line and "deferred" in line for line in errors), result.stderr
    assert bool(errors) == oauth2.exists()
    assert _routes(env) == EXPECTED[name]
    for sender, (relay, user) in EXPECTED[name].items():
        if sender.startswith("@") and relay != "direct":
            assert env.lookup("relayhost_map", sender) == relay  # what Postfix itself finds
    if "DEFAULT_RELAY_HOST" in text:
        assert env.postfix.explicit("relayhost") == EXPECTED[name]["*"][0]
    if "DEFAULT_RELAY_HOST" in text and oauth2.exists():  # XOAUTH2 through its own client
        assert env.postfix.explicit("default_transport") == "relaykit_oauth2"
        keys = f"{env.postfix.param('default_database_type')}:{env.postfix.config_dir / 'sasl_passwd_oauth2_keys'}"
        assert env.postfix.query(keys, EXPECTED[name]["*"][0]) == {"gmail": "google"}.get(name, "microsoft")
    elif "DEFAULT_RELAY_HOST" in text:
        assert env.lookup("sasl_passwd", EXPECTED[name]["*"][0]) == f"{EXPECTED[name]['*'][1]}:{SECRET}"
    assert SECRET not in result.stdout + result.stderr


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_yaml_file_parses():
    files = sorted(REPO.glob("*.yaml")) + sorted(EXAMPLES.rglob("*.yaml"))
    assert REPO / "compose.yaml" in files and len(files) >= 5
    for path in files:
        assert _documents(path), path


def test_kubernetes_manifests_configure_cleanly_as_the_pod_would_see_them(env, tmp_path):
    """Materialize the Deployment's volumes and environment from the ConfigMaps and the
    Secret, as the kubelet would, then run the real configure on them."""
    docs = {(d["kind"], d["metadata"]["name"]): d
            for path in sorted((EXAMPLES / "kubernetes").glob("*.yaml")) for d in _documents(path)
            if d.get("kind") != "Kustomization"}
    pod = docs["Deployment", "relaykit"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}

    def data(kind: str, name: str) -> dict[str, str]:
        doc = docs[kind, name]
        return doc.get("data") or doc.get("stringData")

    def materialize(volume: dict, directory: Path) -> None:
        sources = volume["projected"]["sources"] if "projected" in volume else [volume]
        for source in sources:
            if "configMap" in source:
                ref, values = source["configMap"], data("ConfigMap", source["configMap"]["name"])
            elif "secret" in source:
                ref = source["secret"]
                values = data("Secret", ref.get("name") or ref["secretName"])
            else:
                continue
            items = ref.get("items") or [{"key": k, "path": k} for k in values]
            for item in items:
                (directory / item["path"]).write_text(values[item["key"]])

    mounts = {}
    for mount in container["volumeMounts"]:
        if mount["mountPath"] == "/tmp/docker-mailserver":
            directory = env.config_dir
        else:
            directory = tmp_path / mount["name"]
            directory.mkdir()
        materialize(volumes[mount["name"]], directory)
        mounts[mount["mountPath"]] = directory
    assert (env.config_dir / "postfix-relaymap.cf").exists() and (env.config_dir / "postfix-sasl-password.cf").exists()

    for source in container.get("envFrom", []):
        env.vars.update(data("ConfigMap", source["configMapRef"]["name"]))
    for variable in container["env"]:
        value = variable["value"]
        inside = [m for m in mounts if value.startswith(m + "/")]
        if inside:  # a file in a mounted volume: the deepest mount holds it
            mount_path = max(inside, key=len)
            value = str(mounts[mount_path] / value[len(mount_path) + 1:])
        env.vars[variable["name"]] = value

    env.configure()
    assert _routes(env) == {"@news.example.com": (MAILGUN, "postmaster@news.example.com"),
                            "*": (SES_EU, "AKIAEXAMPLEEXAMPLE12")}
    assert env.lookup("sasl_passwd", SES_EU) == "AKIAEXAMPLEEXAMPLE12:replace-with-the-ses-smtp-password"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["exec"]["command"] == ["relaykit", "health"]


def test_compose_has_config_and_queue_volumes_and_file_secrets():
    compose = _documents(REPO / "compose.yaml")[0]
    service = compose["services"]["relay"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert targets["/tmp/docker-mailserver"] == "./config"
    assert targets["/var/spool/postfix"] in compose["volumes"]  # a named volume: survives restarts
    assert all(source.startswith("./") or source in compose["volumes"] for source in targets.values())
    # Compose v1 (Debian's docker-compose 1.29) rejects env_file's long form and a missing
    # file: variables come from config/relaykit.env, which relaykit reads itself
    assert "env_file" not in service
    for name in service["secrets"]:
        assert f"/run/secrets/{name}" in service["environment"].values()
        assert name in compose["secrets"]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]


def test_dockerfile_runs_the_install_recipe_and_the_real_commands():
    """The image's instructions name things that exist: the recipe CI runs, and commands
    of relaykit's own command tree (ENTRYPOINT, HEALTHCHECK)."""
    from relaykit.cli.main import _tree

    text = (REPO / "Dockerfile").read_text()
    instructions = {}
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip() and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.setdefault(word, []).append(rest.strip())
    assert instructions["FROM"] == ["debian:12-slim"]
    assert any("target/install.sh" in run for run in instructions["RUN"])
    assert (REPO / "target/install.sh").exists()
    assert json.loads(instructions["ENTRYPOINT"][0]) == ["tini", "--", "relaykit-entrypoint"]
    assert json.loads(instructions["CMD"][0]) == ["start"] and _tree().child("start") is not None
    health = json.loads(instructions["HEALTHCHECK"][0].split("CMD", 1)[1])
    assert health[0] == "relaykit" and _tree().child(health[1]) is not None
    assert instructions["STOPSIGNAL"] == ["SIGTERM"]
    assert "/var/spool/postfix" in instructions["VOLUME"][0]


KUBERNETES_VERSIONS = ("1.29", "1.33")  # the schemas kubernetes-validate ships, offline


def _kubernetes_objects() -> list[tuple[str, dict]]:
    kustomization = yaml.safe_load((EXAMPLES / "kubernetes" / "kustomization.yaml").read_text())
    return [(name, doc) for name in kustomization["resources"]
            for doc in _documents(EXAMPLES / "kubernetes" / name)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_are_valid_against_the_kubernetes_schemas(version):
    import kubernetes_validate

    objects = _kubernetes_objects()
    assert {doc["kind"] for _, doc in objects} >= {"ConfigMap", "Secret", "Deployment", "Service"}
    for name, doc in objects:
        kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field
    # strict: a misspelt field is an error, so the validation above can fail
    deployment = next(doc for _, doc in objects if doc["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_kubernetes_runs_the_image_compose_runs_with_its_default_command():
    compose = _documents(REPO / "compose.yaml")[0]["services"]["relay"]
    deployment = next(doc for _, doc in _kubernetes_objects() if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == compose["image"]
    # no command/args: the image's ENTRYPOINT and CMD (`start`), as in compose
    assert "command" not in container and "args" not in container and "command" not in compose
    secrets = {e["name"]: e["value"] for e in container["env"]}
    assert secrets["RELAY_PASSWORD_FILE"].startswith("/run/secrets/")
    assert compose["environment"]["RELAY_PASSWORD_FILE"].startswith("/run/secrets/")


def _exposed_metric_names() -> set[str]:
    """The sample names a real METRICS_PORT endpoint serves (relaykit.metrics, in-process)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from harness.postfix_instance import free_port
    from relaykit import metrics

    port = free_port()
    metrics.serve(port, "127.0.0.1", version="test", postfix_version="3.7",
                  queue=lambda: [{"queue_name": "deferred", "arrival_time": 1}])
    metrics.delivery("relay.test[192.0.2.1]:587", "sent")
    metrics.reload("applied")
    metrics.token_refresh("[smtp.office365.com]:587", ok=True)
    metrics.log_lines_dropped(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_monitoring_examples_parse_and_use_only_metrics_relaykit_serves():
    import re

    dashboard = json.loads((EXAMPLES / "monitoring" / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((EXAMPLES / "monitoring" / "prometheus-alerts.yaml").read_text())
    scrape = yaml.safe_load((EXAMPLES / "monitoring" / "prometheus.yaml").read_text())
    assert scrape["rule_files"] == ["prometheus-alerts.yaml"]
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= set(r) and r["labels"]["severity"] for r in alerts)
    expressions += [r["expr"] for r in alerts]
    used = {name for e in expressions for name in re.findall(r"\brelaykit_[a-z_]+", e)}
    exposed = _exposed_metric_names()
    assert used - exposed == set(), f"not served by relaykit: {sorted(used - exposed)}"
    # every metric family relaykit serves is on the dashboard
    assert {n for n in exposed if n.startswith("relaykit_")} - used == set()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
