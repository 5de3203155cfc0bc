"""compose.yml: valid by the Compose Specification's schema and by Debian's docker-compose,
with the health check, volume, memory limit and profiles it promises, and the files its
services mount present in the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT, make_settings, need_tool, run_cli

COMPOSE = ROOT / "compose.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
PROFILES = {
    (): {"backwatch"},
    ("postgres",): {"backwatch", "postgres"},
    ("monitoring",): {"backwatch", "prometheus-token", "prometheus", "grafana"},
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _interpolated(value: str) -> str:
    """What compose makes of ``${NAME:-default}`` with none of the variables set."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def test_compose_file_follows_the_compose_specification() -> None:
    from jsonschema import Draft7Validator

    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(_compose())]  # fmt: skip
    assert not errors, errors
    # and the schema does catch a mistake
    broken = _compose()
    broken["services"]["backwatch"]["mem_limt"] = "128m"
    assert list(validator.iter_errors(broken))


def test_docker_compose_reads_it(tmp_path: Path) -> None:
    tool = need_tool("docker-compose")
    env_file = tmp_path / "empty.env"  # a developer's own .env must not change the result
    env_file.write_text("")
    base = [tool, "--project-directory", str(ROOT), "-f", str(COMPOSE), "--env-file",
            str(env_file), "--profile=postgres", "--profile=monitoring"]  # fmt: skip
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def config(*args: str) -> str:
        done = subprocess.run([*base, "config", *args], capture_output=True, text=True, env=clean)
        assert done.returncode == 0, done.stderr
        return done.stdout

    config("-q")
    assert set(config("--profiles").split()) == {"postgres", "monitoring"}
    resolved = yaml.safe_load(config())
    for profiles, wanted in PROFILES.items():
        active = {name for name, service in resolved["services"].items()
                  if set(service.get("profiles", profiles)) & set(profiles) or
                  "profiles" not in service}  # fmt: skip
        assert active == wanted, profiles
    # what compose resolved: the interpolated defaults and the bind mounts
    backwatch = resolved["services"]["backwatch"]
    assert backwatch["environment"]["BACKWATCH_AUTH__READ"] == "token"
    assert backwatch["environment"]["BACKWATCH_SERVER__ALLOWED_HOSTS"] == "backwatch,"
    assert backwatch["mem_limit"] == "128m"


def test_backwatch_service_has_health_check_volume_limit_and_restart() -> None:
    compose = _compose()
    service = compose["services"]["backwatch"]
    assert service["build"] == "."
    assert service["image"] == "localhost/backwatch:dev"
    assert service["restart"] == "unless-stopped"
    assert service["mem_limit"] == "128m"  # seed 001's compose file
    assert "backwatch-data:/data" in service["volumes"]
    assert "backwatch-data" in compose["volumes"]
    assert "5001:5001" in service["ports"]
    check = service["healthcheck"]
    assert check["test"][0] == "CMD" and "/readyz" in check["test"][-1]
    assert "curl" not in " ".join(check["test"]) and "wget" not in " ".join(check["test"])
    # the same probe as the image's own HEALTHCHECK, when the Dockerfile has one
    dockerfile = ROOT / "Dockerfile"
    if dockerfile.is_file():
        text = dockerfile.read_text().replace("\\\n", " ")
        found = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.MULTILINE)
        assert found, "Dockerfile has no HEALTHCHECK CMD [...]"
        assert json.loads(found.group(1)) == check["test"][1:]


def test_profiles_and_what_they_need() -> None:
    services = _compose()["services"]
    assert services["postgres"]["profiles"] == ["postgres"]
    for name in ("prometheus-token", "prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
    assert "profiles" not in services["backwatch"]
    assert "healthcheck" in services["postgres"]
    token = services["prometheus-token"]
    assert token["depends_on"]["backwatch"]["condition"] == "service_healthy"
    assert "--scope read" in token["command"][0]
    prom = services["prometheus"]
    assert prom["depends_on"]["prometheus-token"]["condition"] == "service_completed_successfully"
    # the token is made as the image's user, so the database's files stay that user's
    dockerfile = ROOT / "Dockerfile"
    if dockerfile.is_file():
        (user,) = re.findall(r"^USER (\d+):(\d+)\s*$", dockerfile.read_text(), re.MULTILINE)
        assert f"--reuid={user[0]} --regid={user[1]}" in token["command"][0]


def test_every_mounted_file_exists_and_the_pieces_fit() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for source, _target in _bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, missing from the repo"
    prom_mounts = dict((t, s) for s, t in _bind_mounts(services["prometheus"]))
    config = yaml.safe_load((ROOT / prom_mounts["/etc/prometheus/prometheus.yml"]).read_text())
    (scrape,) = config["scrape_configs"]
    assert scrape["honor_labels"] is True  # the series carry their own job label
    assert scrape["static_configs"][0]["targets"] == ["backwatch:5001"]
    credentials = scrape["authorization"]["credentials_file"]
    assert "prometheus-token:/token:ro" in services["prometheus"]["volumes"]
    assert credentials == "/token/backwatch"
    assert "> /token/backwatch.new" in services["prometheus-token"]["command"][0]
    assert "mv /token/backwatch.new /token/backwatch" in services["prometheus-token"]["command"][0]

    grafana = services["grafana"]
    mounts = dict((t, s) for s, t in _bind_mounts(grafana))
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "backwatch.yml").read_text())[
        "providers"
    ]
    dashboard_path = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(dashboard_path).parent == Path(provider["options"]["path"])
    assert mounts[dashboard_path] == "./deploy/grafana/backwatch-dashboard.json"


def test_the_environment_names_real_settings_and_lets_prometheus_scrape(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from backwatch.settings import FileSettings
    from backwatch.settings_env import variables
    from backwatch.web.app import create_app

    declared = _compose()["services"]["backwatch"]["environment"]
    environment = {k: _interpolated(str(v)) for k, v in declared.items()}
    known = variables(FileSettings)
    for name in environment:
        assert name == "TZ" or name in known, f"{name} is no backwatch setting"
    data_dir = tmp_path / "data"
    environment["BACKWATCH_DATA_DIR"] = str(data_dir)
    created = run_cli("token", "create", "--name", "prometheus", "--scope", "read",
                      env={"BACKWATCH_DATA_DIR": str(data_dir)})  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    settings = make_settings(data_dir, **environment)
    assert settings.auth.read == "token"
    # Prometheus scrapes http://backwatch:5001/metrics with the read token
    with TestClient(create_app(settings), base_url="http://backwatch:5001") as client:
        assert client.get("/metrics").status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200, scraped.text
        assert "backwatch_alerts_open" in scraped.text
        assert client.get("/readyz").status_code == 200  # the health check needs no token


def test_promtool_accepts_the_prometheus_configuration(tmp_path: Path) -> None:
    promtool = need_tool("promtool")  # Debian's prometheus package
    token = tmp_path / "backwatch"
    token.write_text("bw_read_token\n")
    config = tmp_path / "prometheus.yml"
    text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert "/token/backwatch" in text
    config.write_text(text.replace("/token/backwatch", str(token)))
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
