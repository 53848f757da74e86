"""Throwaway certificates for the TLS tests, made with openssl(1) at test
time: a test CA, a server certificate for 127.0.0.1 and localhost signed by
it, one for another host name, a client certificate (CN alice) signed by
the CA, and a second CA nobody trusts with a server certificate of its
own."""

import subprocess
from pathlib import Path


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def _key(d, name):
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", f"{name}.key", cwd=d)


def _ca(d, name):
    _key(d, name)
    _run("req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days",
         "2", "-subj", f"/CN={name}", "-out", f"{name}.pem", cwd=d)


def _leaf(d, name, ca, cn, san=None, client=False):
    _key(d, name)
    _run("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out",
         f"{name}.csr", cwd=d)
    ext = [f"subjectAltName={san}"] if san else []
    ext.append("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"))
    (Path(d) / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
         f"{ca}.key", "-CAcreateserial", "-days", "2", "-sha256", "-extfile",
         f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def make(d):
    """Write the files into directory d; return a dict of their paths."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "evil-ca")
    _leaf(d, "server", "ca", "chat test server",
          san="IP:127.0.0.1,DNS:localhost")
    _leaf(d, "wronghost", "ca", "elsewhere", san="DNS:elsewhere.example")
    _leaf(d, "evil", "evil-ca", "chat test server",
          san="IP:127.0.0.1,DNS:localhost")
    _leaf(d, "alice", "ca", "alice", client=True)
    _leaf(d, "mallory", "evil-ca", "mallory", client=True)
    return {n: str(d / f"{n}.{ext}") for n in
            ("ca", "evil-ca", "server", "wronghost", "evil", "alice", "mallory")
            for ext in ("pem",)} | \
        {f"{n}-key": str(d / f"{n}.key") for n in
         ("server", "wronghost", "evil", "alice", "mallory")}
