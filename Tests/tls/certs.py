"""Test certificates, made with the `openssl` command into a directory (nothing is committed):

  ca.pem / ca.key            the test CA
  server.pem / server.key    localhost + 127.0.0.1 + ::1, signed by the CA
  server2.pem / server2.key  the same names, another key (certificate rotation)
  client.pem / client.key    a client: CN test-client, SANs DNS client.test, URI spiffe://test/client
  expired.pem / expired.key  localhost, valid only in 2020
  wronghost.pem / .key       wrong.example only
  other-ca.pem / other-ca.key, untrusted-client.pem / .key   a client from a CA nobody trusts

    python3 Tests/tls/certs.py DIR      (or certs.make(DIR) from a test; returns DIR)
"""
import os
import subprocess
import sys

CA_CONFIG = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
"""


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(name, cwd):
    _run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=cwd)


def _ca(name, cn, cwd):
    _key(name, cwd)
    _run("req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days", "30", "-subj", f"/CN={cn}",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-out", f"{name}.pem", cwd=cwd)


def _leaf(name, cn, sans, ca, cwd, client=False, dates=None):
    _key(name, cwd)
    usage = "clientAuth" if client else "serverAuth"
    _run("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-addext", f"subjectAltName={sans}",
         "-addext", f"extendedKeyUsage={usage}", "-out", f"{name}.csr", cwd=cwd)
    if dates is None:
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "30", "-sha256", "-copy_extensions", "copy", "-out", f"{name}.pem", cwd=cwd)
    else:  # `openssl ca` sets any validity period
        with open(os.path.join(cwd, "ca.cnf"), "w") as f:
            f.write(CA_CONFIG.format(dir=cwd))
        open(os.path.join(cwd, "index.txt"), "w").close()
        with open(os.path.join(cwd, "serial"), "w") as f:
            f.write("1000\n")
        _run("ca", "-config", "ca.cnf", "-batch", "-notext", "-in", f"{name}.csr", "-cert", f"{ca}.pem",
             "-keyfile", f"{ca}.key", "-startdate", dates[0], "-enddate", dates[1], "-out", f"{name}.pem", cwd=cwd)


def make(directory):
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(os.path.join(directory, "untrusted-client.pem")):
        return directory
    local = "DNS:localhost,IP:127.0.0.1,IP:::1"
    _ca("ca", "swiftgrpc test CA", directory)
    _leaf("server", "localhost", local, "ca", directory)
    _leaf("server2", "localhost", local, "ca", directory)
    _leaf("client", "test-client", "DNS:client.test,URI:spiffe://test/client", "ca", directory, client=True)
    _leaf("expired", "localhost", local, "ca", directory, dates=("20200101000000Z", "20200201000000Z"))
    _leaf("wronghost", "wrong.example", "DNS:wrong.example", "ca", directory)
    _ca("other-ca", "nobody's CA", directory)
    _leaf("untrusted-client", "intruder", "DNS:intruder.test", "other-ca", directory, client=True)
    return directory


def read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


if __name__ == "__main__":
    print(make(sys.argv[1]))
