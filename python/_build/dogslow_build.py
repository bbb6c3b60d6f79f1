# SPDX-License-Identifier: MIT
"""A minimal PEP 517 build backend for dogslow_client, standard library only.

Why not setuptools: building a wheel with setuptools older than 70.1 needs
the separate 'wheel' package, which many interpreters (pyenv's 3.11, for
one) do not have -- and 'pip install ./python' must work offline, without
fetching build tools.  The package is a handful of .py files; putting them
in a zip with the three dist-info files is all a pure-Python wheel is
(https://packaging.python.org/en/latest/specifications/binary-distribution-format/).

Metadata comes from pyproject.toml's [project] table.

A wheel built from a dogslowd source tree (pip install ./python) also holds
dogslow_client/_built.py, naming that tree: the installed package then
finds the libdogslow built there (tools/quickstart's build/lib/.libs) when
the system's loader does not know one.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "dogslow_client"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = f.read()
    try:
        import tomllib  # 3.11+
        return tomllib.loads(data.decode("utf-8"))["project"]
    except ImportError:
        pass
    # Older Pythons: the simple 'key = "string"' lines of [project] are
    # all the metadata we need.
    proj, section = {}, None
    for line in data.decode("utf-8").splitlines():
        m = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r'\s*([A-Za-z_-]+)\s*=\s*"([^"]*)"\s*$', line)
        if section == "project" and m:
            proj[m.group(1)] = m.group(2)
    return proj


def _dist_name(proj):
    return re.sub(r"[-_.]+", "_", proj["name"]).lower()


def _metadata(proj):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % proj["name"],
        "Version: %s" % proj["version"],
    ]
    if proj.get("description"):
        lines.append("Summary: %s" % proj["description"])
    if proj.get("requires-python"):
        lines.append("Requires-Python: %s" % proj["requires-python"])
    lic = proj.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append("License: %s" % lic["text"])
    for c in proj.get("classifiers", []) or []:
        lines.append("Classifier: %s" % c)
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _package_files():
    pkg = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield "%s/%s" % (PACKAGE, name), os.path.join(pkg, name)


def _built_module():
    """dogslow_client/_built.py: the source tree this wheel is built from,
    or None (an sdist, a copy of python/ alone)."""
    tree = os.path.dirname(ROOT)
    if not os.path.exists(os.path.join(tree, "lib", "dogslow.c")):
        tree = None
    text = ("# Written by dogslow_build.py when the wheel was built.\n"
            "SOURCE_TREE = %r\n" % tree)
    return "%s/_built.py" % PACKAGE, text.encode("utf-8")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(wheel_directory, contents):
    """contents: [(arcname, bytes)]; adds dist-info and returns the name."""
    proj = _project()
    dist = _dist_name(proj)
    info = "%s-%s.dist-info" % (dist, proj["version"])
    name = "%s-%s-py3-none-any.whl" % (dist, proj["version"])
    files = list(contents)
    files.append(("%s/METADATA" % info, _metadata(proj).encode("utf-8")))
    files.append(("%s/WHEEL" % info, b"Wheel-Version: 1.0\nGenerator: dogslow_build\n"
                  b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    files.append(("%s/top_level.txt" % info, (PACKAGE + "\n").encode()))
    record = [_record_line(a, d) for a, d in files]
    record.append("%s/RECORD,," % info)
    files.append(("%s/RECORD" % info, ("\n".join(record) + "\n").encode()))
    stamp = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            zi = zipfile.ZipInfo(arcname, date_time=stamp)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    contents = []
    for arcname, path in _package_files():
        if arcname == "%s/_built.py" % PACKAGE:
            continue
        with open(path, "rb") as f:
            contents.append((arcname, f.read()))
    contents.append(_built_module())
    return _write_wheel(wheel_directory, contents)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth file puts the source directory on sys.path.
    return _write_wheel(wheel_directory, [(PACKAGE + ".pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    proj = _project()
    base = "%s-%s" % (_dist_name(proj), proj["version"])
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for rel in ["pyproject.toml", "README.md", "_build/dogslow_build.py"] + \
                [a for a, _ in _package_files()]:
            tar.add(os.path.join(ROOT, rel), arcname="%s/%s" % (base, rel))
        data = _metadata(proj).encode("utf-8")
        ti = tarfile.TarInfo("%s/PKG-INFO" % base)
        ti.size = len(data)
        ti.mtime = int(time.time())
        tar.addfile(ti, io.BytesIO(data))
    return name
