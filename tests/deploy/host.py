"""What the deploy test's image build borrows from this host: its pip settings and CA bundle (for
the stand-in base image) and a local CPU torch wheel (for the build context's wheels/ folder).

    python3 tests/deploy/host.py base-context DIR            # DIR/pip.conf, DIR/ca-certificates.crt
    python3 tests/deploy/host.py cpu-wheels DIR cp311 CACHE  # links the wheels, prints the TORCH_SPEC
    python3 tests/deploy/host.py index                       # the package index pip uses here

Standard library only: it runs with the host's python3, before any venv exists.
"""

from __future__ import annotations

import os
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

# Where the bundle goes in the base image; pip.conf's `cert` names it there.
IMAGE_CA = "/etc/ssl/certs/ca-certificates.crt"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# pip settings that mean the same thing inside a container. Paths on this host (find-links,
# constraint, file:// indexes) do not: the container has none of them.
PORTABLE = ("index-url", "extra-index-url", "trusted-host", "proxy", "timeout", "default-timeout", "retries")


def pip_config() -> dict[str, str]:
    """`pip config list` as {key: value}; environment (PIP_*) entries win over files, as in pip."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found: dict[str, tuple[bool, str]] = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(:env:|[\w-]+)\.([\w-]+)='(.*)'", line.strip())
        if m:
            scope, key, value = m.groups()
            if scope == ":env:" or not found.get(key, (False, ""))[0]:
                found[key] = (scope == ":env:", value)
    return {key: value for key, (_, value) in found.items()}


def remote(urls: str) -> str:
    return " ".join(u for u in urls.split() if u.startswith(("http://", "https://")))


def base_context(dest: Path) -> None:
    config = pip_config()
    bundle = Path(config.get("cert") or os.environ.get("PIP_CERT") or SYSTEM_CA)
    if not bundle.is_file():
        sys.exit(f"no CA bundle at {bundle}: set PIP_CERT to the bundle this host's pip trusts")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, dest / "ca-certificates.crt")
    lines = ["[global]", f"cert = {IMAGE_CA}"]
    for key in PORTABLE:
        value = config.get(key, "")
        value = remote(value) if key.endswith("index-url") else value
        if value:
            lines.append(f"{key} = {value}")
    (dest / "pip.conf").write_text("\n".join(lines) + "\n")


def index() -> str:
    return remote(pip_config().get("index-url", "")).split(" ")[0] or "https://pypi.org/simple"


def wheel_dirs() -> list[Path]:
    """The folders this host's pip reads wheels from: find-links and local file:// indexes."""
    config = pip_config()
    dirs = [Path(p) for p in config.get("find-links", "").split() if not p.startswith(("http:", "https:"))]
    for url in (config.get("index-url", "") + " " + config.get("extra-index-url", "")).split():
        if url.startswith("file://"):
            index = Path(url[len("file://"):])
            dirs += [index, index.parent / "files"]
    return [d for d in dirs if d.is_dir()]


def version_key(wheel: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", wheel.name.split("-")[1].split("+")[0]))


def link(wheel: Path, dest: Path) -> None:
    target = dest / wheel.name
    if not target.exists():
        try:
            os.link(wheel, target)
        except OSError:
            shutil.copyfile(wheel, target)


def cpu_wheels(dest: Path, python_tag: str, cache: Path) -> None:
    """Link the newest local CPU torch for `python_tag` and a torchvision for it (torch 2.N pairs
    with torchvision 0.(N+15)) into `dest`; print the pip requirement naming them, nothing if
    there is no local CPU torch."""
    dirs = wheel_dirs()
    torches = [w for d in dirs for w in d.rglob(f"torch-*+cpu-{python_tag}-*linux*x86_64.whl")]
    if not torches:
        return
    torch = max(torches, key=version_key)
    major, minor = version_key(torch)[:2]
    pattern = f"torchvision-0.{minor + 15}.*-{python_tag}-*linux*x86_64.whl"
    visions = sorted((w for d in dirs for w in d.rglob(pattern)), key=version_key) if major == 2 else []
    cpu_visions = [w for w in visions if "+cpu" in w.name]
    vision = cpu_visions[-1] if cpu_visions else cpu_standin(visions[-1], cache) if visions else None
    dest.mkdir(parents=True, exist_ok=True)
    spec = []
    for wheel in (torch, vision):
        if wheel:
            link(wheel, dest)
            spec.append(f"{wheel.name.split('-')[0]}=={wheel.name.split('-')[1]}")
    print(" ".join(spec))


STANDIN = "cpustandin"


def cpu_standin(wheel: Path, cache: Path) -> Path:
    """PyPI's Linux torchvision is built against CUDA torch: with a CPU torch its extension does
    not load and `import torchvision` fails (an unguarded register_fake of torchvision::nms), and
    with it every transformers model. Where no CPU build can be had (PyTorch's index out of
    reach), this stand-in is that wheel without its compiled ops and image codecs (qkatlas uses
    neither) and with those registrations guarded; version `<v>+cpustandin`. Cached in `cache`."""
    name, version, *tags = wheel.name[:-len(".whl")].split("-")
    new_version = f"{version.split('+')[0]}+{STANDIN}"
    target = cache / ("-".join([name, new_version, *tags]) + ".whl")
    if target.exists():
        return target
    old_info, new_info = f"{name}-{version}.dist-info/", f"{name}-{new_version}.dist-info/"
    guard = "@(lambda op: torch.library.register_fake(op) if torchvision.extension._has_ops() else (lambda f: f))("
    records = []
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            path = info.filename
            if path.endswith(".so") or ".so." in path or path == old_info + "RECORD":
                continue
            data = src.read(info)
            if path == f"{name}/_meta_registrations.py":
                data = data.replace(b"@torch.library.register_fake(", guard.encode())
            elif path == f"{name}/version.py":
                data = re.sub(rb"__version__ = '[^']*'", f"__version__ = '{new_version}'".encode(), data)
            elif path == old_info + "METADATA":
                data = data.replace(f"Version: {version}\n".encode(), f"Version: {new_version}\n".encode(), 1)
            path = path.replace(old_info, new_info)
            entry = zipfile.ZipInfo(path, info.date_time)
            entry.external_attr = info.external_attr
            out.writestr(entry, data, zipfile.ZIP_DEFLATED)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{path},sha256={digest},{len(data)}")
        records.append(f"{new_info}RECORD,,")
        out.writestr(zipfile.ZipInfo(new_info + "RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(records) + "\n")
    tmp.rename(target)
    return target


if __name__ == "__main__":
    command, *args = sys.argv[1:] or [""]
    if command == "base-context" and len(args) == 1:
        base_context(Path(args[0]))
    elif command == "index" and not args:
        print(index())
    elif command == "cpu-wheels" and len(args) == 3:
        cpu_wheels(Path(args[0]), args[1], Path(args[2]))
    else:
        sys.exit(__doc__)
