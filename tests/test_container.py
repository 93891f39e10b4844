"""The container image, checked without a Docker engine.

The Dockerfile is parsed, not restated. Its COPY sources (filtered by .dockerignore) go into a
temporary root file system at the paths the image gives them; its `python` and `pip` RUN steps
are replayed in a fresh virtual environment (the OS plumbing, such as useradd, is not); then
`syncd run` starts the way the image starts it — the image's ENV, WORKDIR, ENTRYPOINT and CMD —
configured from SYNCD_* variables alone, against the bundled Wix and Square emulators.

The venv sees the test interpreter's site-packages (a .pth file), so dependencies need no
network; syncd itself is installed into the venv from the copied sources and is checked to be
imported from there, not from the repository. Only the build backend named in pyproject.toml is
fetched if the test environment lacks it.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
STOP_SECONDS = 10

# `pip install` options whose value is the next word (a value that is not a package to install).
_PIP_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
}


# -- the Dockerfile ------------------------------------------------------------------------------


@dataclass
class Dockerfile:
    """What of a single-stage Dockerfile the test replays."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    workdirs: list[str] = field(default_factory=list)
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (COPY|RUN, workdir, args)
    volumes: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _exec_form(args: str) -> list[str]:
    if args.startswith("["):
        words = json.loads(args)
        assert isinstance(words, list) and all(isinstance(w, str) for w in words), args
        return words
    return ["/bin/sh", "-c", args]


def parse_dockerfile(path: Path) -> Dockerfile:
    image = Dockerfile()
    stages = 0
    for keyword, args in instructions(path.read_text(encoding="utf-8")):
        if keyword == "FROM":
            stages += 1
            image.base = args.split()[0]
        elif keyword == "ENV":
            words = shlex.split(args)
            if words and "=" not in words[0]:  # the legacy `ENV NAME value` form
                image.env[words[0]] = _expand(args.partition(" ")[2].strip(), image.env)
            for word in words if "=" in words[0] else []:
                name, _, value = word.partition("=")
                image.env[name] = _expand(value, image.env)
        elif keyword == "WORKDIR":
            image.workdir = posixpath.normpath(
                posixpath.join(image.workdir, _expand(args, image.env))
            )
            image.workdirs.append(image.workdir)
        elif keyword in ("COPY", "RUN"):
            image.steps.append((keyword, image.workdir, args))
        elif keyword == "ADD":
            raise AssertionError("ADD is not replayed by this test: use COPY")
        elif keyword == "VOLUME":
            image.volumes += json.loads(args) if args.startswith("[") else args.split()
        elif keyword == "EXPOSE":
            image.exposed += args.split()
        elif keyword == "USER":
            image.user = args
        elif keyword == "ENTRYPOINT":
            image.entrypoint = _exec_form(args)
        elif keyword == "CMD":
            image.cmd = _exec_form(args)
        elif keyword == "HEALTHCHECK":
            check = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", args, re.DOTALL | re.IGNORECASE)
            if check:  # else `HEALTHCHECK NONE`
                image.healthcheck = _exec_form(check.group(2).strip())
    assert stages == 1, "this test replays a single-stage Dockerfile; extend it for several"
    return image


# -- the build context ---------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore(context: Path) -> Callable[[str], bool]:
    """Whether a context-relative path is left out of the build context."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    file = context / ".dockerignore"
    for line in file.read_text(encoding="utf-8").splitlines() if file.exists() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
            rules.append((negate, _glob_regex(pattern)))

    def ignored(relative: str) -> bool:
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negate, rule in rules:
            if any(rule.fullmatch(c) for c in candidates):
                verdict = not negate
        return verdict

    return ignored


# -- the image, replayed -------------------------------------------------------------------------


@dataclass
class Replayed:
    image: Dockerfile
    root: Path  # stands for the image's /
    venv: Path
    site_packages: Path
    installed_from: list[Path]  # the folders `pip install <path>` ran on

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def host(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def mapped(self, text: str) -> str:
        """`text` with the image's volume and working-directory paths moved under `root`."""
        paths = sorted({*self.image.volumes, *self.image.workdirs} - {"/"}, key=len, reverse=True)
        rule = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(p) for p in paths) + r")(?![\w.-])")
        return rule.sub(lambda m: str(self.host(m.group(1))), text)

    def runtime_env(self, **extra: str) -> dict[str, str]:
        """The container's environment: the image's ENV (paths mapped), the venv on PATH."""
        env = {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
        }
        env.update({k: self.mapped(v) for k, v in self.image.env.items()})
        env.update(extra)
        return env

    @property
    def command(self) -> list[str]:
        """ENTRYPOINT + CMD, as the container's process runs them."""
        return [self.mapped(w) for w in [*self.image.entrypoint, *self.image.cmd]]

    @property
    def cwd(self) -> Path:
        return self.host(self.image.workdir)


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_tool_env(), text=True, capture_output=True, check=False, timeout=300
    )


def _make_venv(venv: Path) -> Path:
    """A fresh venv over the test interpreter's packages; its site-packages folder."""
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {made.stderr.strip()[-300:]}")
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], venv)
    site_packages = Path(purelib.stdout.strip())
    ours = [*site.getsitepackages(), site.getusersitepackages()]
    (site_packages / "_syncd_test_environment.pth").write_text(
        "\n".join(p for p in ours if Path(p).is_dir()) + "\n", encoding="utf-8"
    )
    has_pip = _run([python, "-m", "pip", "--version"], venv)
    if has_pip.returncode != 0:
        pytest.skip("the test environment has no pip to install into a virtual environment")
    return site_packages


def _ensure_build_backend(python: Path, project: Path) -> None:
    """What --no-build-isolation needs: pyproject's build requirements, and bdist_wheel."""
    requires = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))[
        "build-system"
    ]["requires"]
    wheel_probe = (
        "import importlib.util as u, sys; "
        "sys.exit(not (u.find_spec('setuptools.command.bdist_wheel') or u.find_spec('wheel')))"
    )
    for needed in (requires, ["wheel"]):
        if needed == ["wheel"] and _run([str(python), "-c", wheel_probe], project).returncode == 0:
            break
        got = _run([str(python), "-m", "pip", "install", "-q", *needed], project)
        if got.returncode != 0:
            pytest.skip(
                f"cannot give the virtual environment its build backend {needed} (offline?): "
                f"{got.stderr.strip()[-300:]}"
            )


def _copy(
    context: Path, ignored: Callable[[str], bool], args: str, workdir: str, root: Path
) -> None:
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    assert not any(w.startswith("--from") for w in words), "COPY --from is not replayed"
    words = [w for w in words if not w.startswith("--")]  # --chown, --chmod, --link
    *sources, dest = words
    target = root / posixpath.join(workdir, dest).lstrip("/")
    into_dir = dest.endswith("/") or dest in (".", "..") or len(sources) > 1 or target.is_dir()
    for source in sources:
        matches = sorted(glob.glob(source, root_dir=context))
        assert matches, f"COPY {source}: not in the build context"
        for match in matches:
            path = context / match
            if path.is_dir():
                for file in sorted(path.rglob("*")):
                    relative = file.relative_to(context).as_posix()
                    if file.is_file() and not ignored(relative):
                        to = target / file.relative_to(path)
                        to.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, to)
            else:
                assert not ignored(match), f"COPY {match}: excluded by .dockerignore"
                to = target / path.name if into_dir else target
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, to)


def _commands(args: str) -> list[list[str]]:
    """A RUN line's commands: the words between `&&` and `;`."""
    if args.startswith("["):
        return [json.loads(args)]
    lexer = shlex.shlex(args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in ("&&", ";"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _replay_run(replayed: Replayed, args: str, cwd: Path) -> None:
    for words in _commands(args):
        redirect = None
        if ">" in words:
            at = words.index(">")
            words, redirect = words[:at], cwd / words[at + 1]
        if words[0] in ("python", "python3") and words[1:3] == ["-m", "pip"]:
            words = ["pip", *words[3:]]
        if words[0] in ("python", "python3"):
            done = _run([str(replayed.python), *words[1:]], cwd)
        elif words[0] in ("pip", "pip3") and words[1] == "install":
            done = _replay_pip_install(replayed, words[2:], cwd)
        elif words[0] in ("pip", "pip3"):
            done = _run([str(replayed.python), "-m", "pip", *words[1:]], cwd)
        else:
            continue  # OS plumbing (useradd, mkdir, chown): not replayed
        assert done.returncode == 0, f"RUN {' '.join(words)}:\n{done.stdout}\n{done.stderr}"
        if redirect is not None:
            redirect.write_text(done.stdout, encoding="utf-8")


def _replay_pip_install(
    replayed: Replayed, args: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    local: list[Path] = []
    skip_value = False
    for word in args:
        if skip_value:
            skip_value = False
        elif word in _PIP_VALUE_OPTIONS:
            skip_value = True
        elif not word.startswith("-") and word.startswith((".", "/")):
            local.append(replayed.host(word) if word.startswith("/") else (cwd / word).resolve())
    pip = [str(replayed.python), "-m", "pip", "install", *args]
    if not local:
        # Dependencies: they come from the test's own environment, so --no-index proves each
        # is there (already satisfied) and that the step's requirement list is well-formed.
        return _run([*pip, "--no-index"], cwd)
    for project in local:
        _ensure_build_backend(replayed.python, project)
    replayed.installed_from += local
    return _run([*pip, "--no-deps", "--no-build-isolation", "--no-index"], cwd)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    image = parse_dockerfile(DOCKERFILE)
    tmp = tmp_path_factory.mktemp("image")
    root, venv = tmp / "rootfs", tmp / "venv"
    root.mkdir()
    site_packages = _make_venv(venv)
    result = Replayed(image, root, venv, site_packages, installed_from=[])
    ignored = dockerignore(REPO)
    for keyword, workdir, args in image.steps:
        cwd = result.host(workdir)
        cwd.mkdir(parents=True, exist_ok=True)  # WORKDIR creates its folder
        if keyword == "COPY":
            _copy(REPO, ignored, args, workdir, root)
        else:
            _replay_run(result, args, cwd)
    for folder in [*image.volumes, image.workdir]:
        result.host(folder).mkdir(parents=True, exist_ok=True)
    assert result.installed_from, "no RUN step of the Dockerfile installs syncd from its sources"
    return result


# -- the tests -----------------------------------------------------------------------------------


def test_the_dockerfile_describes_a_production_daemon() -> None:
    image = parse_dockerfile(DOCKERFILE)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image.base), image.base
    assert image.user.split(":")[0] not in ("root", "0"), "the daemon must not run as root"
    assert {"/etc/syncd", "/var/lib/syncd"} <= set(image.volumes)
    assert "8080" in image.exposed
    assert image.cmd == ["syncd", "run"]
    assert image.env.get("SYNCD_SERVER__HOST") == "0.0.0.0"
    assert image.env.get("SYNCD_CONFIG") == "/etc/syncd/syncd.toml"
    # An image-wide SYNCD_DATABASE__URL would override the database of a mounted config file.
    assert "SYNCD_DATABASE__URL" not in image.env
    assert image.healthcheck, "the image has no HEALTHCHECK"
    assert not {"curl", "wget"} & set(" ".join(image.healthcheck).split())
    assert "/healthz" in " ".join(image.healthcheck)


def test_the_build_context_leaves_out_environments_caches_and_secrets() -> None:
    ignored = dockerignore(REPO)
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "syncd/__pycache__/cli.cpython-311.pyc",
        "tests/conformance/wix_sdk/node_modules/@wix/sdk/package.json",
        ".pytest_cache/README.md",
        ".hypothesis/examples/x",
        "syncd.egg-info/PKG-INFO",
        "syncd.db",
        "syncd.toml",
        "secrets/wix_api_key",
    ):
        assert ignored(path), f"{path} would be sent to the Docker build"
    for path in ("pyproject.toml", "README.md", "syncd/cli.py", "syncd/store/migrations/env.py"):
        assert not ignored(path), f"{path} is needed by the image but left out"


def test_syncd_is_installed_from_the_copied_sources(replayed: Replayed) -> None:
    probe = (
        "import json, syncd, connectors; from importlib.metadata import distribution; "
        "d = distribution('syncd'); "
        "print(json.dumps({'syncd': syncd.__file__, 'connectors': connectors.__file__, "
        "'direct_url': json.loads(d.read_text('direct_url.json') or '{}')}))"
    )
    ran = subprocess.run(
        [str(replayed.python), "-c", probe],
        cwd=replayed.cwd,
        env=replayed.runtime_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(ran.stdout)
    for name in ("syncd", "connectors"):
        assert Path(found[name]).is_relative_to(replayed.site_packages), found
        assert not Path(found[name]).is_relative_to(REPO), found
    (source,) = replayed.installed_from
    assert found["direct_url"]["url"] == source.as_uri()
    assert source.is_relative_to(replayed.root)
    assert not found["direct_url"].get("dir_info", {}).get("editable"), "an editable install"
    script = replayed.venv / "bin" / "syncd"
    assert script.read_text(encoding="utf-8").startswith(f"#!{replayed.python}")


def test_the_entrypoint_drops_only_a_missing_default_config(replayed: Replayed) -> None:
    default = replayed.mapped(replayed.image.env["SYNCD_CONFIG"])
    show = [str(replayed.python), "-c", "import os; print(os.environ.get('SYNCD_CONFIG', '-'))"]
    entrypoint = [replayed.mapped(w) for w in replayed.image.entrypoint]

    def config_seen(**env: str) -> str:
        ran = subprocess.run(
            [*entrypoint, *show],
            cwd=replayed.cwd,
            env=replayed.runtime_env(**env),
            capture_output=True,
            text=True,
            check=True,
        )
        return ran.stdout.strip()

    assert not Path(default).exists()
    assert config_seen() == "-", "env-only configuration must not name a missing file"
    elsewhere = str(replayed.host("/etc/syncd/other.toml"))
    assert config_seen(SYNCD_CONFIG=elsewhere) == elsewhere, "an explicit path must stay"
    Path(default).write_text("[sync]\n", encoding="utf-8")
    try:
        assert config_seen() == default, "a mounted config file must be read"
    finally:
        Path(default).unlink()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def emulators() -> Iterator[dict[str, str]]:
    """Wix (program ACTIVE) and Square on localhost; the env-only configuration for them."""
    wix = WixEmulator(seed=41)
    wix.activate()
    square = SquareEmulator(seed=42)
    with serve_in_thread(wix.app) as wix_at, serve_in_thread(square.app) as square_at:
        shop = {
            "name": "shop",
            "type": "square",
            "base_url": square_at.url,
            "access_token": square.access_token,
        }
        yield {
            "SYNCD_WIX__BASE_URL": wix_at.url,
            "SYNCD_WIX__SITE_ID": wix.credentials.site_id,
            "SYNCD_WIX__API_KEY": wix.credentials.api_key,
            "SYNCD_CONNECTORS": json.dumps([shop]),
        }


def _wait_for(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        assert process.poll() is None, f"syncd exited {process.returncode}:\n{log.read_text()}"
        try:
            status = httpx.get(url, timeout=2).status_code
            if status == 200:
                return status
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200 (last {status}):\n{log.read_text()}")


def test_the_daemon_runs_as_the_image_runs_it(
    replayed: Replayed, emulators: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    env = replayed.runtime_env(
        **emulators,
        SYNCD_DATABASE__URL=f"sqlite:///{tmp_path / 'syncd.db'}",
        SYNCD_SERVER__PORT=str(port),
    )
    healthcheck = [replayed.mapped(w) for w in replayed.image.healthcheck]

    def health(**env_change: str | None) -> int:
        changed = {**env, **env_change}
        probe_env = {k: v for k, v in changed.items() if v is not None}
        return subprocess.run(
            healthcheck, cwd=replayed.cwd, env=probe_env, capture_output=True, timeout=15
        ).returncode

    log = tmp_path / "syncd.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            replayed.command, cwd=replayed.cwd, env=env, stdout=output, stderr=output, text=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(f"{base}/healthz", process, log) == 200
        assert _wait_for(f"{base}/readyz", process, log) == 200
        assert health() == 0, "the Dockerfile's HEALTHCHECK fails against a healthy daemon"
        # The port from a mounted config file, when no variable names it.
        config = tmp_path / "syncd.toml"
        config.write_text(f"[server]\nport = {port}\n", encoding="utf-8")
        assert health(SYNCD_SERVER__PORT=None, SYNCD_CONFIG=str(config)) == 0

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=STOP_SECONDS)
        assert time.monotonic() - started < STOP_SECONDS
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output_text = log.read_text()
    assert process.returncode == 0, output_text
    assert "Traceback" not in output_text, output_text
    assert "daemon.stopped" in output_text, output_text
    assert (tmp_path / "syncd.db").exists()
    assert health() != 0, "the HEALTHCHECK passes with no daemon listening"
