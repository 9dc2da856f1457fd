"""A DNS name whose addresses change (a hosts file this test owns, bind-mounted over /etc/hosts
for the client's process only, in a mount namespace of its own): the swiftgrpc channel resolves
the name again when a server's max connection age sends GOAWAY, joins the new addresses and
drains the vanished ones — the way long-lived clients follow servers that come and go behind a
name (grpc/grpc#12295)."""
import os
import subprocess
import sys
import textwrap
import time
from concurrent import futures

import pytest

import conftest
import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from servicer import Named

Msg = svc_pb2.Msg


CLIENT = textwrap.dedent("""
    import sys, time
    import swiftgrpc, svc_pb2, svc_pb2_grpc
    target, policy = sys.argv[1], sys.argv[2]
    ch = swiftgrpc.insecure_channel(target, options=[("grpc.lb_policy_name", policy),
                                                     ("grpc.dns_min_time_between_resolutions_ms", 100)])
    stub = svc_pb2_grpc.SvcStub(ch)
    for line in sys.stdin:  # each line: the set of names to reach, then the names to avoid
        want, _, avoid = line.strip().partition("/")
        want, avoid = set(want.split(",")), set(filter(None, avoid.split(",")))
        seen, streak, deadline = set(), 0, time.monotonic() + 20
        while time.monotonic() < deadline:
            name = stub.Unary(svc_pb2.Msg(text="whoami"), timeout=10).text
            seen.add(name)
            streak = 0 if name in avoid else streak + 1
            if want <= seen and streak >= 20:
                break
        print(",".join(sorted(seen)) + "/" + str(streak), flush=True)
    """)


def namespaces_work():
    return os.geteuid() == 0 and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not namespaces_work(), reason="needs root and mount namespaces (unshare -m)")
@pytest.mark.parametrize("policy", ["round_robin", "pick_first"])
def test_the_channel_follows_the_names_addresses(tmp_path, policy):
    probe = swiftgrpc.server()
    port = probe.add_insecure_port("127.0.0.2:0")  # a port free on every loopback address used
    probe.stop(None).wait(5)
    servers = []
    for i in (2, 3, 4):
        s = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=8),
                             options=[("grpc.max_connection_age_ms", 200),
                                      ("grpc.max_connection_age_grace_ms", 5000)])
        svc_pb2_grpc.add_SvcServicer_to_server(Named(f"s{i}"), s)
        assert s.add_insecure_port(f"127.0.0.{i}:{port}") == port
        s.start()
        servers.append(s)
    hosts = tmp_path / "hosts"

    def name_is(*addresses):
        with open(hosts, "r+") as f:  # in place: the bind mount shows this very file
            f.truncate(0)
            f.write("127.0.0.1 localhost\n" + "".join(f"127.0.0.{a} svc.test\n" for a in addresses))

    hosts.write_text("")
    name_is(2)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no",
               PYTHONPATH=os.pathsep.join([conftest.GEN, conftest.BINDINGS]))
    client = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", f'mount --bind "{hosts}" /etc/hosts && exec "{sys.executable}" "{script}" '
                                      f'dns:///svc.test:{port} {policy}'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        def ask(want, avoid=""):
            client.stdin.write(f"{want}/{avoid}\n")
            client.stdin.flush()
            line = client.stdout.readline().strip()
            assert line, client.stderr.read()
            seen, _, streak = line.partition("/")
            return set(seen.split(",")), int(streak)

        assert ask("s2")[0] == {"s2"}
        if policy == "round_robin":
            # New addresses are joined: the aged connection's GOAWAY resolves the name again.
            name_is(2, 3, 4)
            assert ask("s2,s3,s4")[0] == {"s2", "s3", "s4"}
        # A vanished address is drained: after a while no call reaches it.
        name_is(4)
        seen, streak = ask("s4", avoid="s2,s3")
        assert "s4" in seen and streak >= 20
    finally:
        client.stdin.close()
        client.wait(30)
        for s in servers:
            s.stop(None).wait(10)
