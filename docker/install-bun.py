"""Installs bun's binary from its npm package (@oven/bun-linux-<arch>), checked against the
pinned sha512 integrity, as /usr/local/bin/bun. Python's standard library only: the image has
python3 for kiln's Python blocks anyway, and no curl, node or npm."""
import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request

version, arch, integrity = sys.argv[1], sys.argv[2], sys.argv[3]
package = {"amd64": "bun-linux-x64", "arm64": "bun-linux-aarch64"}.get(arch)
if package is None:
    sys.exit(f"install-bun: no bun build for the architecture {arch!r} (amd64 or arm64)")
registry = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
url = f"{registry}/@oven/{package}/-/{package}-{version}.tgz"
with urllib.request.urlopen(url, timeout=120) as response:
    tarball = response.read()
digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
if digest != integrity:
    sys.exit(f"install-bun: {url} has integrity {digest}, expected {integrity} (BUN_SHA512_{arch.upper()})")
with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
    binary = archive.extractfile("package/bin/bun")
    if binary is None:
        sys.exit(f"install-bun: {url} has no package/bin/bun")
    with open("/usr/local/bin/bun", "wb") as out:
        out.write(binary.read())
os.chmod("/usr/local/bin/bun", 0o755)
print(f"install-bun: bun {version} ({package}) from {url}")
