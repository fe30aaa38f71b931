"""The socketiwa command on fresh temporary folders: new -> build -> run, and bad input.

Every command runs as a user would run it (``python -m socketiwa ...`` in a subprocess), with
its own config dir (signing keys) under the test's tmp_path. Dependencies resolve offline from
wheels made here (PIP_NO_INDEX + PIP_FIND_LINKS): pip's real resolver, no network.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from socketiwa._app import chromium as cr

ROOT = Path(__file__).resolve().parent.parent


def socketiwa(*args: str, cwd: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    # Config (signing keys) and the kept Chromium profiles of `run` in the test's folder.
    full_env = dict(os.environ, XDG_CONFIG_HOME=str(cwd / "config"), SOCKETIWA_PROFILES=str(cwd / "profiles"),
                    PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "socketiwa", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def error_line(out: subprocess.CompletedProcess, command: str) -> str:
    """The command failed with exactly one error line (run with -q: no progress lines)."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"socketiwa {command}: error: ")
    return lines[0]


def make_wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any",
               files: dict[str, str] | None = None, requires: list[str] = ()) -> Path:
    """A real wheel file (what pip reads: name, version, tags, Requires-Dist)."""
    dist_info = f"{name}-{version}.dist-info"
    contents = dict(files or {})
    contents[f"{dist_info}/METADATA"] = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
    contents[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: socketiwa-tests\n"
                                      f"Root-Is-Purelib: {'true' if tag.endswith('any') else 'false'}\nTag: {tag}\n")
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, text in contents.items():
            zf.writestr(p, text)
    return path


@pytest.fixture
def wheelhouse(tmp_path):
    """A local package index: two pure wheels (one needs the other) and one C-extension wheel."""
    d = tmp_path / "wheelhouse"
    make_wheel(d, "colorword", "2.0", files={"colorword.py": "def color():\n    return 'teal'\n"})
    make_wheel(d, "greeting", "1.1", requires=["colorword>=2"], files={
        "greeting/__init__.py": "from colorword import color\n\ndef greet(who):\n"
                                "    return f'hello {who} in {color()}'\n"})
    make_wheel(d, "fastthing", "0.3", tag="cp311-cp311-manylinux_2_17_x86_64",
               files={"fastthing.cpython-311-x86_64-linux-gnu.so": "ELF"})
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(d)}


def needs_iwa(request):
    if "iwa" not in request.config.getoption("--runtimes"):
        pytest.skip("the iwa runtime is not selected (--runtimes)")
    if not Path(cr.default_chromium()).exists():
        pytest.skip("Chromium not installed")


def set_main(app: Path, code: str) -> None:
    (app / "main.py").write_text(code)


# ---- new, build


def test_new_makes_a_complete_app(tmp_path):
    out = socketiwa("new", "hello", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    app = tmp_path / "hello"
    assert {p.name for p in app.iterdir()} == {"main.py", "pyproject.toml", "icon.png", ".gitignore"}
    meta = (app / "pyproject.toml").read_text()
    assert 'name = "hello"' in meta and "permissions" in meta and 'icon = "icon.png"' in meta
    # The starter is a normal Python program: it runs on CPython as is.
    run = subprocess.run([sys.executable, "main.py", "x"], cwd=app, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "native backend, arguments: ['x']" in run.stdout and "received: hello over UDP" in run.stdout
    # An existing non-empty folder is refused
    again = socketiwa("-q", "new", "hello", cwd=tmp_path)
    assert "not empty" in error_line(again, "new")


def test_build_prints_id_and_origin_keeps_key_outside_and_is_reproducible(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from iwa.test_iwa import verify_signed_bundle

    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    first = socketiwa("build", "hello", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", first.stdout, re.M))
    key = Path(fields["key"])
    assert key == tmp_path / "config" / "socketiwa" / "keys" / "hello.pem"
    assert not key.is_relative_to(tmp_path / "hello")        # never inside the app's tree
    assert "making a new signing key" in first.stderr           # progress lines on stderr
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected_id = base64.b32encode(public + b"\x00\x01\x02").decode().rstrip("=").lower()
    assert fields["id"] == expected_id and fields["origin"] == f"isolated-app://{expected_id}/"
    swbn = tmp_path / "hello" / "build" / "hello-0.1.0.swbn"
    data = swbn.read_bytes()
    assert verify_signed_bundle(data)["id"] == expected_id
    sha = hashlib.sha256(data).hexdigest()
    assert sha in fields["bundle"]
    assert json.loads((tmp_path / "hello" / "build" / "iwa" / ".well-known" / "manifest.webmanifest")
                      .read_text())["permissions_policy"]["direct-sockets-private"] == ["self"]

    # Same inputs (a touched file is the same input), same bundle, byte for byte.
    os.utime(tmp_path / "hello" / "main.py")
    second = socketiwa("-q", "build", "hello", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert hashlib.sha256(swbn.read_bytes()).hexdigest() == sha
    # Changed code: a new bundle, the same app ID (same key).
    with open(tmp_path / "hello" / "main.py", "a") as f:
        f.write("# changed\n")
    third = socketiwa("-q", "build", "hello", cwd=tmp_path)
    assert hashlib.sha256(swbn.read_bytes()).hexdigest() != sha
    assert f"id:      {expected_id}" in third.stdout


def test_build_resolves_pure_python_dependencies(tmp_path, wheelhouse):
    assert socketiwa("new", "deps", cwd=tmp_path).returncode == 0
    meta = tmp_path / "deps" / "pyproject.toml"
    meta.write_text(meta.read_text().replace("dependencies = []", 'dependencies = ["greeting>=1"]'))
    out = socketiwa("build", "deps", cwd=tmp_path, env=wheelhouse)
    assert out.returncode == 0, out.stderr
    assert "resolving 1 dependency with pip" in out.stderr
    lock = json.loads((tmp_path / "deps" / "socketiwa.lock").read_text())
    assert sorted((w["name"], w["version"]) for w in lock["wheels"]) == [("colorword", "2.0"), ("greeting", "1.1")]
    app_json = json.loads((tmp_path / "deps" / "build" / "iwa" / "app" / "app.json").read_text())
    assert app_json["wheels"] == ["/app/wheels/colorword-2.0-py3-none-any.whl",
                                  "/app/wheels/greeting-1.1-py3-none-any.whl"]
    for url in app_json["wheels"]:
        assert (tmp_path / "deps" / "build" / "iwa" / url.lstrip("/")).is_file()
    # The rebuild uses the lock: no resolution, and no index needed at all.
    again = socketiwa("build", "deps", cwd=tmp_path, env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/nonexistent"})
    assert again.returncode == 0, again.stderr
    assert "resolving" not in again.stderr


def test_run_with_dependencies(tmp_path, wheelhouse, request):
    """Downloaded wheels and packages the runtime ships (aioquic, when build-wasm.sh built it)
    are importable by the program in the IWA."""
    needs_iwa(request)
    from runtimes import available_packages, pyodide_dist
    with_quic = "aioquic" in available_packages(pyodide_dist())
    assert socketiwa("new", "deps", cwd=tmp_path).returncode == 0
    meta = tmp_path / "deps" / "pyproject.toml"
    deps = '["greeting>=1", "aioquic"]' if with_quic else '["greeting>=1"]'
    meta.write_text(meta.read_text().replace("dependencies = []", f"dependencies = {deps}"))
    set_main(tmp_path / "deps", "import importlib.util\nfrom greeting import greet\nprint(greet('IWA'))\n"
             "print('aioquic:', importlib.util.find_spec('aioquic') is not None)\n")
    out = socketiwa("-q", "run", "deps", cwd=tmp_path, env=wheelhouse)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello IWA in teal", f"aioquic: {with_quic}"]
    if with_quic:
        app_json = json.loads((tmp_path / "deps" / "build" / "iwa" / "app" / "app.json").read_text())
        assert app_json["packages"] == ["aioquic"]


def test_build_refuses_a_dependency_with_c_extensions(tmp_path, wheelhouse):
    assert socketiwa("new", "native", cwd=tmp_path).returncode == 0
    meta = tmp_path / "native" / "pyproject.toml"
    meta.write_text(meta.read_text().replace("dependencies = []", 'dependencies = ["fastthing"]'))
    line = error_line(socketiwa("-q", "build", "native", cwd=tmp_path, env=wheelhouse), "build")
    assert "dependency fastthing has no pure-Python wheel" in line and "C extensions" in line
    assert not (tmp_path / "native" / "build" / "native-0.1.0.swbn").exists()
    assert not (tmp_path / "native" / "socketiwa.lock").exists()


def test_build_names_the_c_extension_deep_in_the_dependencies(tmp_path, wheelhouse):
    """A pure wheel that needs a C-extension package, and a package with only a source
    archive: the error names the package that cannot go into the bundle."""
    folder = Path(wheelhouse["PIP_FIND_LINKS"])
    make_wheel(folder, "speedy_parser", "2.1", requires=["fastthing>=0.3"],
               files={"speedy_parser.py": "import fastthing\n"})
    with tarfile.open(folder / "srconly-1.0.tar.gz", "w:gz") as tf:   # an sdist, no wheel at all
        info = tarfile.TarInfo("srconly-1.0/setup.py")
        code = b"from setuptools import setup, Extension\nsetup(ext_modules=[Extension('srconly', ['s.c'])])\n"
        info.size = len(code)
        tf.addfile(info, io.BytesIO(code))
    assert socketiwa("new", "deep", cwd=tmp_path).returncode == 0
    meta = tmp_path / "deep" / "pyproject.toml"
    base = meta.read_text()
    meta.write_text(base.replace("dependencies = []", 'dependencies = ["greeting", "speedy-parser"]'))
    line = error_line(socketiwa("-q", "build", "deep", cwd=tmp_path, env=wheelhouse), "build")
    assert "dependency fastthing" in line and "C extensions not built for Pyodide" in line
    meta.write_text(base.replace("dependencies = []", 'dependencies = ["srconly"]'))
    line = error_line(socketiwa("-q", "build", "deep", cwd=tmp_path, env=wheelhouse), "build")
    assert "dependency srconly has no pure-Python wheel" in line and "ships only source" in line


def test_build_with_the_index_unreachable(tmp_path):
    """No network (an index on a closed loopback port): the error says so, not "no wheel"."""
    assert socketiwa("new", "offline", cwd=tmp_path).returncode == 0
    meta = tmp_path / "offline" / "pyproject.toml"
    meta.write_text(meta.read_text().replace("dependencies = []", 'dependencies = ["somepackage"]'))
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": ""}
    line = error_line(socketiwa("-q", "build", "offline", cwd=tmp_path, env=env), "build")
    assert "package index, which is unreachable" in line


def test_build_without_main_py(tmp_path):
    assert socketiwa("new", "nomain", cwd=tmp_path).returncode == 0
    (tmp_path / "nomain" / "main.py").unlink()
    line = error_line(socketiwa("-q", "build", "nomain", cwd=tmp_path), "build")
    assert "has no main.py" in line and "socketiwa new" in line
    line = error_line(socketiwa("-q", "build", "missing-folder", cwd=tmp_path), "build")
    assert "is not a folder" in line
    out = socketiwa("-q", "build", "nomain", "--", "x", cwd=tmp_path)   # only run takes program args
    assert out.returncode == 2 and "build takes no program arguments" in out.stderr
    # run builds first: the same one line, before any Chromium starts
    line = error_line(socketiwa("-q", "run", "nomain", cwd=tmp_path), "run")
    assert "has no main.py" in line
    assert not (tmp_path / "nomain" / "build").exists()


def test_build_with_a_corrupt_key(tmp_path):
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    key = tmp_path / "bad.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    line = error_line(socketiwa("-q", "build", "hello", "--key", str(key), cwd=tmp_path), "build")
    assert str(key) in line and "not a valid Ed25519 or ECDSA P-256 PEM private key" in line
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\nbm90")   # left as it was
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    assert "not a valid Ed25519 or ECDSA P-256 PEM private key" in error_line(
        socketiwa("-q", "build", "hello", "--key", str(empty), cwd=tmp_path), "build")
    assert empty.read_text() == ""
    assert "not a valid Ed25519 or ECDSA P-256 PEM private key" in error_line(
        socketiwa("-q", "build", "hello", "--key", str(tmp_path), cwd=tmp_path), "build")   # a folder


def test_build_with_a_key_of_the_wrong_kind(tmp_path):
    """A well-formed key that cannot sign a Web Bundle (RSA): one line naming the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    key = tmp_path / "rsa.pem"
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key.write_bytes(pem)
    line = error_line(socketiwa("-q", "build", "hello", "--key", str(key), cwd=tmp_path), "build")
    assert f"the signing key {key} cannot sign the bundle" in line and "Ed25519" in line
    assert key.read_bytes() == pem


def test_build_with_a_relative_key_path(tmp_path):
    """--key relative to where the command runs: an existing key is used from there, a new one
    is made there (not in the socketiwa tree, where the signer runs)."""
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    out = socketiwa("-q", "build", "hello", "--key", "keys/mine.pem", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    made = tmp_path / "keys" / "mine.pem"
    assert made.is_file() and f"key:     {made}" in out.stdout
    assert not (ROOT / "keys" / "mine.pem").exists()
    first_id = re.search(r"^id:\s+(\S+)", out.stdout, re.M).group(1)
    again = socketiwa("-q", "build", str(tmp_path / "hello"), "--key", "mine.pem", cwd=tmp_path / "keys")
    assert again.returncode == 0, again.stderr
    assert f"id:      {first_id}" in again.stdout                  # the same key, so the same app


# ---- run


def test_new_build_run_streams_output(tmp_path, request):
    needs_iwa(request)
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    out = socketiwa("run", "hello", "--", "a", "--flag", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "hello on the directsockets backend, arguments: ['a', '--flag']" in out.stdout
    assert "received: hello over UDP" in out.stdout
    assert "launching Chromium" in out.stderr and "hello exited with code 0" in out.stderr


def test_run_returns_the_exit_code_and_keeps_the_streams_apart(tmp_path, request):
    needs_iwa(request)
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    set_main(tmp_path / "hello", "\n".join([
        "import sys",
        "print('to stdout')",
        "print('to stderr', file=sys.stderr)",
        "for i in range(3000): print(i)",    # a burst: every line arrives, in order
        "try:",
        "    input()",                       # no terminal in an IWA: end of file, not a hang
        "except EOFError:",
        "    print('stdin: eof')",
        "if sys.argv[1] == 'raise':",
        "    raise ValueError('boom')",      # line 10
        "sys.exit(int(sys.argv[1]))", ""]))
    out = socketiwa("-q", "run", "hello", "--", "7", cwd=tmp_path)
    assert out.returncode == 7
    assert out.stdout.splitlines() == ["to stdout", *map(str, range(3000)), "stdin: eof"]
    assert out.stderr.splitlines() == ["to stderr"]
    out = socketiwa("-q", "run", "hello", "--", "raise", cwd=tmp_path)
    assert out.returncode == 1
    assert "ValueError: boom" in out.stderr and 'File "/home/pyodide/app/main.py", line 10' in out.stderr


def test_run_again_reuses_the_install_until_the_app_changes(tmp_path, request):
    needs_iwa(request)
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    set_main(tmp_path / "hello", "import sys\nprint('version one', sys.argv[1:])\nsys.exit(3)\n")
    first = socketiwa("run", "hello", "--", "a", cwd=tmp_path)
    assert (first.returncode, first.stdout) == (3, "version one ['a']\n"), first.stderr
    assert "installing hello (dev mode" in first.stderr and "reusing" not in first.stderr
    [profile] = [d for d in (tmp_path / "profiles").iterdir() if d.is_dir()]
    state = (profile / "socketiwa-install.json").read_text()
    # The same app again: Chromium starts on the kept profile and opens the installed app.
    again = socketiwa("run", "hello", "--", "b", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (3, "version one ['b']\n"), again.stderr
    assert "reusing the installed hello (unchanged since its last run" in again.stderr
    assert "installing" not in again.stderr
    # --fresh-profile installs in a new profile and leaves the kept one as it was.
    fresh = socketiwa("run", "hello", "--fresh-profile", "--", "c", cwd=tmp_path)   # options after DIR too
    assert (fresh.returncode, fresh.stdout) == (3, "version one ['c']\n"), fresh.stderr
    assert "installing hello (dev mode" in fresh.stderr and "reusing" not in fresh.stderr
    assert (profile / "socketiwa-install.json").read_text() == state
    # A changed app is installed again (the old install is gone) and runs its new code.
    set_main(tmp_path / "hello", "print('version two')\n")
    changed = socketiwa("run", "hello", cwd=tmp_path)
    assert (changed.returncode, changed.stdout) == (0, "version two\n"), changed.stderr
    assert "hello changed since its last run: installing it again" in changed.stderr
    assert "installing hello (dev mode" in changed.stderr and "reusing" not in changed.stderr
    assert (profile / "socketiwa-install.json").read_text() != state
    assert [d for d in (tmp_path / "profiles").iterdir() if d.is_dir()] == [profile]


def test_kept_profiles_one_run_at_a_time_and_pruned(tmp_path):
    from socketiwa._app import launch
    root = tmp_path / "profiles"
    held = launch.KeptProfile.take(root, "app-a")
    assert held is not None and held.dir.is_dir()
    assert launch.KeptProfile.take(root, "app-a") is None      # in use: that run gets a fresh one
    held.save({"how": "dev"})
    assert held.state() == {"how": "dev"}
    # More profiles than are kept: the least recently used go, never one in use.
    for i in range(launch.PROFILES_KEPT + 3):
        (root / f"old-{i:02}").mkdir()
        (root / f"old-{i:02}" / launch.STATE_FILE).write_text("{}")
        os.utime(root / f"old-{i:02}" / launch.STATE_FILE, (1000 + i, 1000 + i))
    os.utime(held.dir / launch.STATE_FILE, (10, 10))              # the oldest of all, but locked
    newest = launch.KeptProfile.take(root, "app-b")
    assert newest is not None
    left = sorted(d.name for d in root.iterdir() if d.is_dir())
    kept_old = [f"old-{i:02}" for i in range(launch.PROFILES_KEPT + 3)][-(launch.PROFILES_KEPT - 1):]
    assert left == sorted(["app-a", "app-b", *kept_old])
    held.release()
    again = launch.KeptProfile.take(root, "app-a")
    assert again is not None and again.state() == {"how": "dev"}
    again.release()
    newest.release()
    # A Chromium left running on a profile (its run was killed): that profile is in use too.
    (again.dir / "profile").mkdir()
    (again.dir / "profile" / "SingletonLock").symlink_to(f"somehost-{os.getpid()}")
    assert launch.KeptProfile.take(root, "app-a") is None
    (again.dir / "profile" / "SingletonLock").unlink()
    (again.dir / "profile" / "SingletonLock").symlink_to("somehost-999999999")   # no such process
    free = launch.KeptProfile.take(root, "app-a")
    assert free is not None
    free.release()


def test_run_signed_bundle_in_chromium150(tmp_path, request):
    needs_iwa(request)
    if not cr.CHROMIUM150.exists():
        pytest.fail("Chromium 150 is not unpacked: run 'bash scripts/chromium150.sh'")
    # The newcomer's three commands: new, build (prints the ID), run the signed bundle.
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    built = socketiwa("-q", "build", "hello", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    swbn = tmp_path / "hello" / "build" / "hello-0.1.0.swbn"
    sha = hashlib.sha256(swbn.read_bytes()).hexdigest()
    out = socketiwa("run", "--signed", "hello", "--", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert hashlib.sha256(swbn.read_bytes()).hexdigest() == sha     # run rebuilt the same bundle
    assert "launching Chromium 150" in out.stderr
    assert "installing the signed bundle hello-0.1.0.swbn" in out.stderr
    assert "arguments: ['s']" in out.stdout and "received: hello over UDP" in out.stdout
    # The same bundle again: opened from its install in the kept profile (named by the app's ID).
    app_id = re.search(r"^id:\s+(\S+)", built.stdout, re.M).group(1)
    again = socketiwa("run", "--signed", "hello", "--", "t", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"reusing the installed hello (unchanged since its last run; profile {tmp_path / 'profiles' / app_id})" \
        in again.stderr and "installing" not in again.stderr
    assert "arguments: ['t']" in again.stdout and "received: hello over UDP" in again.stdout


def test_run_without_chromium(tmp_path):
    assert socketiwa("new", "hello", cwd=tmp_path).returncode == 0
    line = error_line(socketiwa("-q", "run", "hello", "--chromium", "/nonexistent/chromium", cwd=tmp_path), "run")
    assert "Chromium not found at /nonexistent/chromium" in line and "scripts/setup.sh" in line
    line = error_line(socketiwa("-q", "run", "hello", cwd=tmp_path,
                                env={"SOCKETIWA_CHROMIUM": str(tmp_path / "no-chromium")}), "run")
    assert "Chromium not found" in line
    line = error_line(socketiwa("-q", "run", "hello", "--headed", cwd=tmp_path,
                                env={"DISPLAY": "", "WAYLAND_DISPLAY": ""}), "run")
    assert "--headed needs a display" in line
    # --signed with no Chromium 150 unpacked (an empty cache)
    line = error_line(socketiwa("-q", "run", "--signed", "hello", cwd=tmp_path,
                                env={"SOCKETIWA_CACHE": str(tmp_path / "empty-cache")}), "run")
    assert "Chromium 150" in line and "scripts/chromium150.sh" in line
    # --signed with a Chromium that has no bundle parser (Debian's 156)
    if Path(cr.SYSTEM_CHROMIUM).exists() and not cr.has_bundle_parser(cr.SYSTEM_CHROMIUM):
        line = error_line(socketiwa("-q", "run", "--signed", "hello", "--chromium", cr.SYSTEM_CHROMIUM,
                                    cwd=tmp_path), "run")
        assert "cannot open signed web bundles" in line


def test_doctor_reports_both_chromiums(tmp_path):
    out = socketiwa("doctor", cwd=tmp_path, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    text = out.stdout
    if Path(cr.SYSTEM_CHROMIUM).exists():
        assert re.search(r"chromium \(dev mode\)\s+Chromium \d+\..* signed bundles: (yes|no)", text), text
    if cr.CHROMIUM150.exists():
        assert re.search(r"ok\s+chromium 150 \(signed\)\s+Chromium 150\..* signed bundles: yes", text), text
    assert "node" in text and "socketiwa tree" in text
    assert out.returncode == (1 if re.search(r"^NO ", text, re.M) else 0)


def test_doctor_without_chromium(tmp_path):
    """Neither Chromium present: doctor says so for each, with the command that fixes it."""
    out = socketiwa("doctor", cwd=tmp_path, timeout=120,
                    env={"SOCKETIWA_CHROMIUM": str(tmp_path / "no-chromium"),
                         "SOCKETIWA_CACHE": str(tmp_path / "empty-cache")})
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(rf"^NO\s+chromium \(dev mode\)\s+not found at {re.escape(str(tmp_path))}/no-chromium"
                     r"\s+-> bash scripts/setup.sh$", out.stdout, re.M), out.stdout
    assert re.search(r"^NO\s+chromium 150 \(signed\)\s+not found at .*empty-cache.*-> bash scripts/chromium150.sh$",
                     out.stdout, re.M), out.stdout
    assert "Traceback" not in out.stderr


def test_pip_install_gives_the_cli(tmp_path):
    """The built wheel in a fresh virtualenv (what `pip install .` gives, no editable install
    and no dependencies): the console script, py.typed and the starter template are there;
    `new` works anywhere; `doctor` runs and says what to set for the rest; `build` without
    SOCKETIWA_ROOT is one line saying to set it, and with it builds."""
    wheels = tmp_path / "wheels"
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (wheel,) = wheels.glob("socketiwa-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {"socketiwa/py.typed", "socketiwa/_app/template/main.py", "socketiwa/h3/__init__.py"} <= names
    venv = tmp_path / "venv"
    # Nothing of the checkout may leak in: PYTHONPATH (the test run's pkg/, with its egg-info)
    # would make pip think socketiwa is installed already.
    env = {k: v for k, v in os.environ.items() if k not in ("SOCKETIWA_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                          str(wheel)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert (venv / "bin" / "socketiwa").exists()
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), PATH=f"{venv / 'bin'}:{env['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    run = lambda *a, **kw: subprocess.run(["socketiwa", *a], cwd=work, env={**env, **kw},  # noqa: E731
                                          capture_output=True, text=True, timeout=240)
    where = run("--help")
    assert where.returncode == 0 and "socketiwa new DIR" in where.stdout
    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import socketiwa; print(socketiwa.__file__)"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert located.stdout.startswith(str(venv)), located   # the installed copy, not the checkout
    new = run("new", "app")
    assert new.returncode == 0, new.stderr
    assert {p.name for p in (work / "app").iterdir()} == {"main.py", "pyproject.toml", "icon.png", ".gitignore"}
    doctor = run("doctor")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr, doctor.stderr
    assert re.search(r"^NO\s+socketiwa tree\s+.*set SOCKETIWA_ROOT=", doctor.stdout, re.M), doctor.stdout
    assert re.search(r"^ok\s+node\s+v\d+", doctor.stdout, re.M), doctor.stdout
    lone = run("-q", "build", "app")
    assert "set SOCKETIWA_ROOT" in error_line(lone, "build")
    doctor = run("doctor", SOCKETIWA_ROOT=str(ROOT))
    assert re.search(rf"^ok\s+socketiwa tree\s+{re.escape(str(ROOT))}$", doctor.stdout, re.M), doctor.stdout
    built = run("-q", "build", "app", SOCKETIWA_ROOT=str(ROOT))
    assert built.returncode == 0, built.stderr
    assert "origin:  isolated-app://" in built.stdout


def test_build_packs_the_app_code(tmp_path):
    """The code zip holds the app's files (subpackages and data included), not its build output,
    caches or virtualenvs, with fixed timestamps."""
    assert socketiwa("new", "packed", cwd=tmp_path).returncode == 0
    app = tmp_path / "packed"
    for rel in ("mylib/__init__.py", "mylib/build/steps.py", "data/table.csv", ".venv/lib/x.py",
                "mylib/__pycache__/x.cpython-311.pyc", "build/old.txt"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text("x = 1\n")
    out = socketiwa("-q", "build", "packed", "--no-sign", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(app / "build" / "iwa" / "app" / "code.zip") as zf:
        assert sorted(zf.namelist()) == ["data/table.csv", "icon.png", "main.py", "mylib/__init__.py",
                                         "mylib/build/steps.py", "pyproject.toml"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not (app / "build" / "packed-0.1.0.swbn").exists()     # --no-sign: dev folder only
