"""docker-compose.yml, Dockerfile and .dockerignore read without a Docker engine: what a lab gets
from `docker compose up` (GPU, volumes, non-root, health check, graceful stop). Building and
running the image is `make test-deploy` (tests/deploy/run.sh), too slow for this suite.

Profiles other than the ones named here (a `cluster` profile, say) are allowed: every profile in
the file must pass `compose config`, and the services checked here must keep their meaning.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from ..conftest import compose_command

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # PyYAML applies `<<` merges as compose does
SERVICES = COMPOSE["services"]
GPU = {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


def gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def mounts(service: dict) -> dict[str, tuple[str, str]]:
    """{target: (source, mode)} of a service's short-syntax volumes; the source may hold `${X:-y}`."""
    found = {}
    for volume in service["volumes"]:
        source, target, mode = re.fullmatch(r"(.+?):(/[^:]*)(?::(ro|rw))?", volume).groups()
        found[target] = (source, mode or "rw")
    return found


def seconds(duration: str) -> float:
    """A Docker duration ("30s", "5m", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def dockerfile_stages() -> dict[str, list[str]]:
    """{stage name: its instructions, continuation lines joined}."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I):
            current = stages.setdefault(m[1], [])
        elif current is not None:
            current.append(line)
    return stages


def instruction(stage: list[str], name: str) -> list[str]:
    return [line[len(name):].strip() for line in stage if line.upper().startswith(name + " ")]


def servers() -> dict[str, dict]:
    """The long-running services: the GPU default and its CPU variant."""
    return {name: SERVICES[name] for name in ("qkatlas", "qkatlas-cpu")}


def test_plain_compose_up_starts_only_the_gpu_server():
    default = [name for name, s in SERVICES.items() if not s.get("profiles")]
    assert default == ["qkatlas"]
    assert gpu_devices(SERVICES["qkatlas"]) == [GPU]
    assert SERVICES["qkatlas"]["build"]["args"].get("TORCH_VARIANT", "cuda") == "cuda"


def test_cpu_variant_is_a_profile_with_cpu_torch_and_no_gpu_reservation():
    cpu = SERVICES["qkatlas-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert cpu["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert cpu["environment"]["QKATLAS_DEVICE"] == "cpu"
    assert gpu_devices(cpu) == []
    assert cpu["image"] != SERVICES["qkatlas"]["image"]


def test_build_profile_is_a_one_shot_qkatlas_build_on_the_gpu_into_the_same_volumes():
    build = SERVICES["build"]
    assert build["profiles"] == ["build"]
    assert build["entrypoint"] == ["qkatlas", "build"]
    assert build["restart"] == "no"
    assert build["healthcheck"] == {"disable": True}
    assert gpu_devices(build) == [GPU]
    assert build["volumes"] == SERVICES["qkatlas"]["volumes"]


def test_servers_keep_atlases_and_caches_in_named_volumes_and_mount_models_read_only():
    named = set(COMPOSE["volumes"])
    for name, service in servers().items():
        found = mounts(service)
        assert found["/data/atlases"] == ("atlases", "rw") and "atlases" in named, name
        assert found["/data/cache"] == ("cache", "rw") and "cache" in named, name
        assert found["/models"][1] == "ro", name


def test_servers_publish_on_loopback_unless_told_otherwise():
    for name, service in servers().items():
        assert service["ports"] == ["${QKATLAS_PUBLISH:-127.0.0.1:8000}:8000"], name
        assert service["restart"] == "unless-stopped", name


def test_servers_stop_gracefully_with_an_init_process_and_a_grace_period():
    for name, service in servers().items():
        assert service["init"] is True, name
        # `qkatlas demo` waits up to 10 s for its builder after uvicorn's own shutdown.
        assert seconds(service["stop_grace_period"]) >= 20, name
    runtime = dockerfile_stages()["runtime"]
    assert instruction(runtime, "STOPSIGNAL") == ["SIGTERM"]


def test_servers_use_the_images_health_check_which_waits_out_model_warm_up():
    for name, service in servers().items():
        assert "healthcheck" not in service, name  # the image's, below
    (check,) = instruction(dockerfile_stages()["runtime"], "HEALTHCHECK")
    options = dict(re.findall(r"--([\w-]+)=(\S+)", check))
    # Liveness, not readiness: /readyz waits for a first atlas, minutes on an empty volume.
    assert "/healthz" in check and "/readyz" not in check
    assert seconds(options["start-period"]) >= 120
    assert seconds(options["timeout"]) < seconds(options["interval"])


def test_image_runs_as_a_non_root_user_and_holds_no_source_tree():
    runtime = dockerfile_stages()["runtime"]
    (user,) = instruction(runtime, "USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    copies = instruction(runtime, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert instruction(runtime, "CMD") == ['["qkatlas", "demo"]']


def test_dockerignore_admits_every_folder_the_package_is_built_from():
    admitted = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {Path(d).parts[0] for d in project["tool"]["setuptools"]["package-dir"].values()}
    needed |= {"pyproject.toml", project["project"]["readme"]}
    assert needed <= admitted


PROFILES = sorted({p for s in SERVICES.values() for p in s.get("profiles", [])})


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_compose_accepts_the_file_with_each_profile_and_reads_it_as_these_tests_do(profile):
    command = compose_command()
    if command is None:
        pytest.skip("no `docker compose` plugin or docker-compose binary on this machine")
    args = [*command, "-f", str(ROOT / "docker-compose.yml"), *(["--profile", profile] if profile else [])]
    done = subprocess.run([*args, "config"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    # docker-compose 1.x lists every service here, the plugin only the active profiles' ones.
    active = {n for n, s in SERVICES.items() if not s.get("profiles") or profile in s["profiles"]}
    assert active <= set(resolved)
    for name in active:
        assert gpu_devices(resolved[name]) == gpu_devices(SERVICES[name]), name
        assert resolved[name]["image"] == SERVICES[name]["image"], name
