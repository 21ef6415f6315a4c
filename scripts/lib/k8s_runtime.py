"""The runtime half of k8s_check.py (`k8s_runtime.py RENDERED.yaml`): the `till` binary
(TILL_BIN) run with each workload's arguments and the rendered ConfigMap, asked every probe the
manifests name. Contacts only loopback addresses."""

import os
import sys
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from k8s_check import ROOT, check, config_data, container, find, load, one, probes, report, setting

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


def wait_for(fn, seconds):
    deadline = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.3)


def runtime(path):
    """Runs TILL_BIN with each workload's args and the manifest's environment (the ConfigMap, plus
    test secrets for the operator's Secret), on loopback ports (the manifest's own ports are checked
    statically against BIND_ADDR / WORKER_HEALTH_ADDR), and asks every probe the manifest names."""
    docs = load(path)
    till = os.environ["TILL_BIN"]
    _, data = config_data(docs)
    web_port, worker_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(data)
    env.update({
        "DATABASE_URL": os.environ["K8S_CHECK_DATABASE_URL"],
        "REDIS_URL": os.environ["K8S_CHECK_REDIS_URL"],
        "REDIS_NAMESPACE": f"k8scheck{os.getpid()}",
        "JWT_SECRET": "k8s-check-jwt-secret-0123456789abcdef",
        "PAYMENT_WEBHOOK_SECRET": "k8s-check-webhook-secret-0123456789abcdef",
        # Loopback instead of 0.0.0.0:<manifest port>; the image's STATIC_DIR is this checkout's web/.
        "BIND_ADDR": f"127.0.0.1:{web_port}",
        "WORKER_HEALTH_ADDR": f"127.0.0.1:{worker_port}",
        "STATIC_DIR": os.path.join(ROOT, "web"),
    })
    env.pop("REDIS_CACHE_URL", None)
    logs = os.environ.get("K8S_CHECK_LOGS", "/tmp")
    procs = []

    def start(name):
        c = container(docs, "Deployment", name)[1]
        e = dict(env)
        for v in c.get("env", []):
            e[v["name"]] = v.get("value", f"k8s-check-{name}")
        log = open(os.path.join(logs, f"{name}.log"), "w")
        p = subprocess.Popen([till, *c["args"]], env=e, stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return c, p

    def migrate():
        c = container(docs, "Job", "till-migrate")[1]
        r = subprocess.run([till, *c["args"]], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"`till {' '.join(c['args'])}` exited {r.returncode}: {r.stderr[-400:]}"
        assert "migrations applied" in r.stdout, f"no 'migrations applied' in {r.stdout[-200:]!r}"

    def url(port, p):
        return f"http://127.0.0.1:{port}{p}"

    def web_probes():
        c, p = state["web"]
        assert wait_for(lambda: get(url(web_port, "/health/liveness"))[0] == 200, 30), "never answered"
        for kind, pr in probes(c).items():
            path = pr["httpGet"]["path"]
            code = wait_for(lambda: get(url(web_port, path))[0] == 200 and 200 or 0, 15)
            assert code == 200, f"{kind} {path}: {get(url(web_port, path))}"

    def web_metrics_ws():
        d = one(docs, "Deployment", "till-web")
        mpath = d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
        code, body = get(url(web_port, mpath))
        assert code == 200 and "till_" in body, f"{mpath}: {code}"
        for i in find(docs, "Ingress"):
            for r in i["spec"]["rules"]:
                for p in r["http"]["paths"]:
                    if p["pathType"] == "Exact":
                        code, _ = get(url(web_port, p["path"]))
                        assert code not in (0, 404), f"Ingress path {p['path']} answered {code}"

    def worker_probes():
        c, p = state["worker"]
        for kind, pr in probes(c).items():
            if "httpGet" in pr:
                path = pr["httpGet"]["path"]
                ok = wait_for(lambda: get(url(worker_port, path))[0] == 200, 30)
                assert ok, f"{kind} {path}: {get(url(worker_port, path))}"
            else:
                socket.create_connection(("127.0.0.1", worker_port), timeout=3).close()
        d = one(docs, "Deployment", "till-worker")
        mpath = d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
        code, body = get(url(worker_port, mpath))
        assert code == 200 and "till_worker_up" in body, f"{mpath}: {code}"

    def drain():
        c, p = state["web"]
        spec = container(docs, "Deployment", "till-web")[0]
        pause = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        ready = [pr["httpGet"]["path"] for k, pr in probes(c).items() if k == "readinessProbe"][0]
        live = [pr["httpGet"]["path"] for k, pr in probes(c).items() if k == "livenessProbe"][0]
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert get(url(web_port, ready))[0] == 503, "readiness not 503 right after SIGTERM"
        assert get(url(web_port, live))[0] == 200, "liveness failed while draining"
        p.wait(timeout=spec["terminationGracePeriodSeconds"] - pause)
        took = time.time() - t0
        drain_s = int(setting(docs, "SHUTDOWN_DRAIN_MS")) / 1000
        assert took >= drain_s - 0.5, f"stopped after {took:.1f}s, before the {drain_s}s drain"
        assert p.returncode == 0, f"exit {p.returncode}"

    state = {}
    try:
        check("runtime: the Job's args migrate a fresh database")(migrate)
        state["web"] = start("till-web")
        state["worker"] = start("till-worker")
        check("runtime: every web probe path answers 200 (serve, manifest env)")(web_probes)
        check("runtime: web /metrics (Prometheus annotation) and Exact Ingress paths are served")(web_metrics_ws)
        check("runtime: worker probes and /metrics on WORKER_HEALTH_ADDR")(worker_probes)
        check("runtime: SIGTERM: readiness 503 at once, liveness 200, exit after the drain within the grace")(drain)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    runtime(sys.argv[1])
    report()
