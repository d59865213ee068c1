"""The installed `setup` script starts without site.py (target/install.sh writes
`#!<venv>/bin/python -S`) and finds relaykit itself: in a venv's site-packages (the image),
through an editable install's .pth file (the dev venv), or else by running site.py. The
`relaykit` command is the same script (target/bin/relaykit is a symlink to it)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

import relaykit

SCRIPT = Path(sys.executable).parent / "setup"
SOURCE = Path(__file__).resolve().parents[2] / "target" / "bin" / "setup"
TREE = Path(relaykit.__file__).resolve().parents[1]  # the directory holding relaykit/


def imported(stderr: str) -> set[str]:
    return {line.rpartition("|")[2].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def run_without_site(python: str, script: Path, config: Path) -> subprocess.CompletedProcess:
    """`python -S script relay add-domain ...`, as the kernel runs the shebang, from a clean
    environment (no PYTHONPATH: the script alone must find relaykit)."""
    return subprocess.run([python, "-S", "-X", "importtime", str(script), "relay", "add-domain", "x.example",
                           "smtp.relay.test", "587"], capture_output=True, text=True,
                          env={"RELAYKIT_CONFIG_DIR": str(config), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("name", ["setup", "relaykit"])
def test_install_sh_gives_the_installed_scripts_a_site_free_shebang(name):
    """Fails in a venv not installed by target/install.sh (make install), whose plain
    pip install leaves the interpreter alone on the first line."""
    first = (SCRIPT.parent / name).read_text().split("\n", 1)[0]
    assert first.startswith(f"#!{Path(sys.executable).parent}/python") and first.endswith(" -S"), first


def test_relaykit_is_the_same_script_and_runs_its_own_commands_without_site_py(tmp_path):
    """Named relaykit, the script runs relaykit's command tree (not setup's), with
    neither site.py nor a console_scripts wrapper's `re`."""
    relaykit_script = SCRIPT.parent / "relaykit"
    assert relaykit_script.read_text().split("\n", 1)[1] == SCRIPT.read_text().split("\n", 1)[1]
    result = subprocess.run([sys.executable, "-S", "-X", "importtime", str(relaykit_script), "--version"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stdout) == (0, f"relaykit {relaykit.__version__}\n"), result.stderr
    assert imported(result.stderr) & {"site", "re"} == set()
    unknown = subprocess.run([str(relaykit_script), "frobnicate"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin"})
    assert unknown.returncode == 2 and "relaykit frobnicate" in unknown.stderr


def test_the_installed_setup_finds_relaykit_without_site_py(tmp_path):
    """This venv (editable or not): the fast path, not the site.py fallback."""
    result = run_without_site(sys.executable, SCRIPT, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "postfix-relaymap.cf").read_text() == "@x.example\t[smtp.relay.test]:587\n"
    assert imported(result.stderr) & {"site", "os"} == set()  # os: ~2 ms, inputs/env.environment


def test_the_installed_setup_keeps_the_environment_output_and_exit_statuses(tmp_path):
    """RELAYKIT_CONFIG_DIR is read; what went to a pipe (block-buffered stdout) arrives
    although the script leaves with os._exit; errors keep their messages and statuses."""
    env = {"RELAYKIT_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(SCRIPT), "relay", "add-domain", "x.example", "smtp.relay.test"],
                          capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout) == (0, "@x.example now relays through [smtp.relay.test]:25\n")
    helped = subprocess.run([str(SCRIPT), "help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: setup <command>")
    assert helped.stdout.endswith("for details.\n")
    (tmp_path / "postfix-relaymap.cf").unlink()
    bad = subprocess.run([str(SCRIPT), "relay", "add-domain", "x.example", "smtp.relay.test", "99999"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "99999" in bad.stderr
    unknown = subprocess.run([str(SCRIPT), "relay", "frobnicate"], capture_output=True, text=True, env=env)
    assert unknown.returncode == 2 and "frobnicate" in unknown.stderr
    assert not (tmp_path / "postfix-relaymap.cf").exists()


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(symlinks=True, with_pip=False).create(path)
    return next((path / "lib").glob("python3*/site-packages"))


@pytest.mark.parametrize("install", ["site-packages", "editable"])
def test_an_install_runs_without_site_py(tmp_path, install):
    """site-packages: the image, relaykit in the venv's site-packages, no .pth file.
    editable: the dev venv, where pip install -e writes a .pth file naming the source tree."""
    site_packages = make_venv(tmp_path / "venv")
    if install == "site-packages":
        (site_packages / "relaykit").symlink_to(TREE / "relaykit")
    else:
        (site_packages / "__editable__.relaykit-0.1.0.pth").write_text(f"{TREE}\n")
    result = run_without_site(str(tmp_path / "venv" / "bin" / "python"), SOURCE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "postfix-relaymap.cf").read_text() == "@x.example\t[smtp.relay.test]:587\n"
    assert imported(result.stderr) & {"site", "os"} == set()
    version = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-S", str(SOURCE.parent / "relaykit"),
                              "--version"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert version.stdout == f"relaykit {relaykit.__version__}\n", version.stderr


def test_relaykit_found_only_by_site_py_falls_back_to_it(tmp_path):
    """A .pth file that is not one plain directory (here setuptools' finder style, an
    import line): site.py runs, and the command works as without -S."""
    site_packages = make_venv(tmp_path / "venv")
    (site_packages / "__editable__.relaykit-0.1.0.pth").write_text(
        f"import sys; sys.path.append({str(TREE)!r})\n")
    result = run_without_site(str(tmp_path / "venv" / "bin" / "python"), SOURCE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "postfix-relaymap.cf").read_text() == "@x.example\t[smtp.relay.test]:587\n"
    assert "site" in imported(result.stderr)


def test_without_relaykit_anywhere_the_error_is_python_s_own(tmp_path):
    make_venv(tmp_path / "venv")
    result = run_without_site(str(tmp_path / "venv" / "bin" / "python"), SOURCE, tmp_path)
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'relaykit'" in result.stderr


def test_the_environment_without_os_is_the_one_os_environ_gives(tmp_path):
    """`setup`'s fast path reads the environment without importing os (inputs/env.environment):
    the same names and values as os.environ, undecodable bytes included; once os is
    imported, os.environ itself (which tests and the daemon change)."""
    code = ("import sys; from relaykit.inputs.env import environment, config_dir; started = environment(); "
            "assert 'os' not in sys.modules; import os; "
            "assert started == dict(os.environ) and environment() is os.environ, (started, dict(os.environ)); "
            "os.environ['RELAYKIT_CONFIG_DIR'] = '/changed'; print(config_dir(), started['ODD'].encode('utf-8', "
            "'surrogateescape'))")
    env = {b"PATH": b"/usr/bin:/bin", b"PYTHONPATH": str(TREE).encode(), b"RELAYKIT_CONFIG_DIR": b"/cfg",
           b"ODD": b"caf\xe9 \xff"}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, env=env)
    assert (result.returncode, result.stdout) == (0, b"/changed b'caf\\xe9 \\xff'\n"), result.stderr


def test_a_relaykit_on_pythonpath_comes_before_the_venv_s(tmp_path):
    """As with site.py: PYTHONPATH's entries come first, so a relaykit there is the one run
    (the script looks in its own tree first only when PYTHONPATH is not set)."""
    import shutil

    shutil.copytree(TREE / "relaykit", tmp_path / "relaykit", ignore=shutil.ignore_patterns("__pycache__"))
    init = tmp_path / "relaykit" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{relaykit.__version__}"', '__version__ = "0.0.0-copy"'))
    script = SCRIPT.parent / "relaykit"
    env = {"PATH": "/usr/bin:/bin"}
    assert subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env).stdout == \
        f"relaykit {relaykit.__version__}\n"
    copy = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(tmp_path)})
    assert copy.stdout == "relaykit 0.0.0-copy\n", copy.stderr
