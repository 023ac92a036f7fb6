#!/usr/bin/env python3
"""A fleet's start times through a real three-node OpenBao Raft cluster, with and without a
leader failover, side by side.

    bench/fleet-failover.py [--vault-run PATH] [--n 100] [--at-once 10] [--deadline 30s]

Starts the cluster on 127.0.0.1 (free ports below the ephemeral range, data in a temporary
directory, everything stopped and removed on exit), seeds five KV v2 secrets, then launches
N `vault-run` processes through a standby, AT_ONCE at a time, each reading the five secrets
into `env`: once on a steady cluster, once while the active node is SIGKILLed after 15 % of the
launches have finished. Prints one Markdown table (started, p50, p99, max of the launches'
wall times) and exits 1 if a launch started its child without every secret.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def api(addr, method, path, body=None, token=None, timeout=10):
    """(status, JSON or None) of one request; status 0 when the node does not answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def until(what, check, limit=30):
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            raise SystemExit(f"fleet-failover: {what} did not happen within {limit} s")
        time.sleep(0.05)


def free_ports(n):
    """Ports below the ephemeral range that are free now (bao binds its cluster port late)."""
    out, port = [], 29_000 + (os.getpid() % 50) * 60
    while len(out) < n:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                out.append(port)
            except OSError:
                pass
        port += 1
    return out


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fleet-bao-")
        ports = free_ports(6)
        self.addrs, self.procs, self.configs = [], [None] * 3, []
        for i in range(3):
            api_port, cluster_port = ports[2 * i], ports[2 * i + 1]
            data = os.path.join(self.dir, f"n{i}")
            os.mkdir(data)
            config = os.path.join(self.dir, f"n{i}.hcl")
            with open(config, "w") as f:
                f.write(
                    f'storage "raft" {{\n path = "{data}"\n node_id = "n{i}"\n performance_multiplier = 1\n}}\n'
                    f'listener "tcp" {{\n address = "127.0.0.1:{api_port}"\n cluster_address = "127.0.0.1:{cluster_port}"\n tls_disable = true\n}}\n'
                    f'api_addr = "http://127.0.0.1:{api_port}"\ncluster_addr = "https://127.0.0.1:{cluster_port}"\n'
                    'disable_mlock = true\nui = false\nlog_level = "error"\n'
                )
            self.configs.append(config)
            self.addrs.append(f"http://127.0.0.1:{api_port}")
        for i in range(3):
            self.spawn(i)
        for a in self.addrs:
            until(f"{a} answering", lambda a=a: self.health(a) == 501)
        _, init = api(self.addrs[0], "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        self.root, key = init["root_token"], init["keys_base64"][0]
        api(self.addrs[0], "PUT", "sys/unseal", {"key": key})
        until("node 0 active", lambda: self.health(self.addrs[0]) == 200)
        # Joined nodes vote only after autopilot's stabilisation time (10 s by default).
        api(self.addrs[0], "POST", "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s"}, self.root)
        for a in self.addrs[1:]:
            env = dict(os.environ, VAULT_ADDR=a)
            env.pop("VAULT_TOKEN", None)
            subprocess.run(["bao", "operator", "raft", "join", self.addrs[0]], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            api(a, "PUT", "sys/unseal", {"key": key})
        for a in self.addrs[1:]:
            until(f"{a} standby", lambda a=a: self.health(a) == 429)
        until("three voters", lambda: self.voters() == 3)
        api(self.addrs[0], "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, self.root)
        for n in range(5):
            until("seeding", lambda n=n: api(self.addrs[0], "POST", f"secret/data/app/s{n}",
                                             {"data": {"v": f"value-{n}"}}, self.root)[0] == 200)
        for a in self.addrs:
            until("reads on every node", lambda a=a: api(a, "GET", "secret/data/app/s0", None, self.root)[0] == 200)

    def spawn(self, i):
        log = open(os.path.join(self.dir, f"n{i}.log"), "w")
        env = {k: v for k, v in os.environ.items() if k not in ("VAULT_ADDR", "BAO_ADDR")}
        self.procs[i] = subprocess.Popen(["bao", "server", f"-config={self.configs[i]}"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def health(self, addr):
        return api(addr, "GET", "sys/health", timeout=2)[0]

    def voters(self):
        _, v = api(self.addrs[self.active()], "GET", "sys/storage/raft/configuration", None, self.root)
        return sum(1 for s in (v or {}).get("data", {}).get("config", {}).get("servers", []) if s.get("voter"))

    def active(self):
        for _ in range(600):
            for i, a in enumerate(self.addrs):
                if self.procs[i] and self.health(a) == 200:
                    return i
            time.sleep(0.05)
        raise SystemExit("fleet-failover: no active node")

    def standby(self):
        return next(i for i, a in enumerate(self.addrs) if self.procs[i] and self.health(a) == 429)

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()
        self.procs[i] = None

    def stop(self):
        for p in self.procs:
            if p:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def fleet(vault_run, addr, token, n, at_once, deadline, on_done=None):
    """[(exit code, wall seconds, all five secrets in the child)] of n launches."""
    args = [vault_run, "--deadline", deadline]
    for k in range(5):
        args += ["-e", f"S{k}=vault://secret/app/s{k}#v"]
    args += ["--", "env", "-0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "ASS_"))}
    env.update(VAULT_ADDR=addr, VAULT_TOKEN=token)
    want = {f"S{k}": f"value-{k}" for k in range(5)}
    done, lock = [0], threading.Lock()

    def one(_):
        t = time.monotonic()
        p = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        took = time.monotonic() - t
        got = dict(e.split("=", 1) for e in p.stdout.decode(errors="replace").split("\0") if "=" in e)
        whole = all(got.get(k) == v for k, v in want.items())
        with lock:
            done[0] += 1
            if on_done:
                on_done(done[0])
        return p.returncode, took, whole, bool(p.stdout)

    with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
        return list(pool.map(one, range(n)))


def pct(sorted_times, q):
    return sorted_times[min(len(sorted_times) - 1, int(q * len(sorted_times)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vault-run", default=os.path.join(ROOT, "target/release/vault-run"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--at-once", type=int, default=10)
    ap.add_argument("--deadline", default="30s")
    a = ap.parse_args()
    c = Cluster()
    rows, bad = [], 0
    try:
        via = c.standby()
        for name, kill in (("steady cluster", False), ("active node killed", True)):
            active = c.active()
            kill_at = max(1, a.n * 15 // 100)
            fired = threading.Event()

            def on_done(k, kill=kill, active=active, fired=fired):
                if kill and k >= kill_at and not fired.is_set():
                    fired.set()
                    c.kill(active)

            t = time.monotonic()
            out = fleet(a.vault_run, c.addrs[via], c.root, a.n, a.at_once, a.deadline, on_done)
            wall = time.monotonic() - t
            bad += sum(1 for code, _, whole, started in out if (code == 0) != whole or (code != 0 and started))
            times = sorted(took for _, took, _, _ in out)
            started = sum(1 for code, _, _, _ in out if code == 0)
            ms = lambda s: f"{s * 1000:.0f} ms"
            rows.append((name, f"{started}/{a.n}", ms(pct(times, 0.5)), ms(pct(times, 0.99)), ms(times[-1]), f"{wall:.1f} s"))
    finally:
        c.stop()
    print(f"fleet of {a.n} launches through a standby of a three-node OpenBao Raft cluster, "
          f"{a.at_once} at a time, five vault:// secrets each, --deadline {a.deadline}\n")
    print("| run | started | p50 | p99 | max | whole fleet |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if bad:
        print(f"fleet-failover: FAIL: {bad} launches started a child without every secret", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
