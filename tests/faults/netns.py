"""A network namespace of the test's own, joined to the host by a veth pair, for the
network fault: a gateway runs inside it, so all of its traffic (clients, PostgreSQL,
Redis, Kafka) crosses the veth link, where the fault is applied.

Only the two addresses of the pair (10.244.N.1 on the host, 10.244.N.2 inside) are
used; nothing listens on any other interface. Delay/loss come from `tc`: the kernel
here has no netem qdisc ("Specified qdisc kind is unknown", no modprobe, no
/lib/modules), nor any classifier, so the fault is a `tbf` rate limit (packets queue
for up to its latency, then are tail-dropped: delay and loss under load) followed by
a link-down partition (100 % loss). With netem available, `netem_supported()` says so
and the fault uses `netem delay ... loss ...` instead.
"""
from __future__ import annotations

import random
import shutil
import subprocess
import sys

from tests.harness.stack import Proc, Stack


def _run(command: list[str], check: bool) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *args], check)


def _tc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["tc", *args], check)


def why_unavailable() -> str | None:
    """None if namespaces and tc can be used here, else the reason."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "ip/tc not installed (apt-get install iproute2)"
    probe = f"gcfprobe{random.randint(0, 9999)}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Namespace:
    def __init__(self, tag: str) -> None:
        self.name = f"gcf-{tag}"
        self.host_if, self.ns_if = f"gcfh{tag[:6]}", f"gcfn{tag[:6]}"
        used = _ip("-4", "addr").stdout
        for _ in range(50):
            n = random.randint(1, 250)
            if f"10.244.{n}." not in used:
                break
        self.host_ip, self.ns_ip = f"10.244.{n}.1", f"10.244.{n}.2"
        self.relays: list[Proc] = []
        self.netem = False

    def create(self) -> None:
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        _ip("link", "set", self.ns_if, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        inside = ("netns", "exec", self.name, "ip")
        _ip(*inside, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        _ip(*inside, "link", "set", self.ns_if, "up")
        _ip(*inside, "link", "set", "lo", "up")
        probe = _tc("qdisc", "add", "dev", self.host_if, "root", "netem", "delay", "1ms", check=False)
        self.netem = probe.returncode == 0
        if self.netem:
            _tc("qdisc", "del", "dev", self.host_if, "root", check=False)

    @property
    def wrap(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def start_relays(self, stack: Stack, ports: list[int]) -> None:
        """Service ports reachable from inside at 127.0.0.1, through the veth link."""
        relay = [sys.executable, "-m", "tests.faults.relay"]
        host_side = stack.spawn(f"relay-host-{self.name}", [*relay, self.host_ip, "127.0.0.1", *map(str, ports)])
        ns_side = stack.spawn(f"relay-ns-{self.name}", [*relay, "127.0.0.1", self.host_ip, *map(str, ports)], wrap=self.wrap)
        self.relays = [host_side, ns_side]
        for proc in self.relays:
            proc.wait_for_log("relay ready", timeout=30)

    def _both(self, *args: str) -> None:
        _tc("qdisc", "replace", "dev", self.host_if, "root", *args)
        _ip("netns", "exec", self.name, "tc", "qdisc", "replace", "dev", self.ns_if, "root", *args)

    def degrade(self) -> str:
        """Delay and loss both ways; returns what was applied."""
        if self.netem:
            args = ("netem", "delay", "300ms", "100ms", "loss", "10%")
        else:
            args = ("tbf", "rate", "256kbit", "burst", "4kb", "latency", "1500ms")
        self._both(*args)
        return " ".join(args)

    def partition(self, down: bool) -> None:
        _ip("link", "set", self.host_if, "down" if down else "up")

    def heal(self) -> None:
        self.partition(False)
        _tc("qdisc", "del", "dev", self.host_if, "root", check=False)
        _ip("netns", "exec", self.name, "tc", "qdisc", "del", "dev", self.ns_if, "root", check=False)

    def destroy(self) -> None:
        for proc in self.relays:
            proc.kill()
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.name, check=False)

