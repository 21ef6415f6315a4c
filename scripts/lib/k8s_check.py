#!/usr/bin/env python3
"""Checks of the rendered Kubernetes manifests (deploy/k8s), for scripts/test.d/32-k8s.sh.

    k8s_check.py static OVERLAY RENDERED.yaml         the manifests' shape, one overlay
    k8s_check.py overlays DEV.yaml PROD.yaml          what differs between overlays
    k8s_check.py checkov REPORT.json                  checkov's findings and suppressions
    k8s_runtime.py RENDERED.yaml                      the `till` binary (TILL_BIN) run as the manifests say

Each check prints one line, `ok NAME` or `FAIL NAME: why`; the suite counts them. What the manifests
must agree with is read from the code, never repeated here: the settings Till reads (and which are
secrets) and their defaults from crates/app/src/config/mod.rs (container ports against BIND_ADDR and
WORKER_HEALTH_ADDR as the pods see them); probe paths, the WebSocket path and /metrics by running the
binary with the manifest's own environment and arguments (k8s_runtime.py).
Needs PyYAML (the suite's venv has it). Contacts only loopback addresses.
"""

import ipaddress
import json
import os
import re
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
results = []


def check(name):
    """`check(NAME)(fn, *args)`: runs fn; records ok, or FAIL with the assertion's message."""

    def run(fn, *args):
        try:
            fn(*args)
            results.append(("ok", name, ""))
        except AssertionError as e:
            results.append(("FAIL", name, str(e) or "assertion failed"))
        except Exception as e:  # a crash is a failure of that check, not of the run
            results.append(("FAIL", name, f"{type(e).__name__}: {e}"))

    return run


# ------------------------------------------------------------------------------------ the code
def code_settings():
    """{NAME: default} of every setting Till reads, and the set of those that are secrets."""
    text = open(os.path.join(ROOT, "crates/app/src/config/mod.rs")).read()
    decl = re.compile(r'(\w+):\s*([^=]+?)\s*=\s*\(\s*"([A-Z][A-Z0-9_]*)",\s*"([^"]*)"')
    settings, secrets = {}, set()
    for _field, ty, name, default in decl.findall(text):
        settings[name] = None if default == "-" else default
        if "SecretString" in ty:
            secrets.add(name)
    assert len(settings) > 30 and "DATABASE_URL" in secrets, "settings not found in config/mod.rs"
    return settings, secrets


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


# ------------------------------------------------------------------------------- the manifests
def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def one(docs, kind, name):
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def config_data(docs):
    maps = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("till-config")]
    assert len(maps) == 1, f"{len(maps)} till-config ConfigMaps"
    return maps[0]["metadata"]["name"], maps[0].get("data", {})


def setting(docs, name):
    """The value a pod sees: the ConfigMap's, else the code's default."""
    return config_data(docs)[1].get(name, code_settings()[0][name])


def container(docs, kind, name):
    spec = one(docs, kind, name)["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1, f"{name}: one container expected"
    return spec, spec["containers"][0]


def named_port(c, port):
    if isinstance(port, int):
        return port
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    assert port in ports, f"{c['name']}: no port named {port}"
    return ports[port]


def probes(c):
    return {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in c}


def selected(selector, labels):
    ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for e in selector.get("matchExpressions", []):
        v = labels.get(e["key"])
        ok = ok and {"In": v in e.get("values", []), "NotIn": v not in e.get("values", []),
                     "Exists": v is not None, "DoesNotExist": v is None}[e["operator"]]
    return ok


def pod_templates(docs):
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            out.append((d["metadata"]["name"], d["spec"]["template"]))
    return out


# ------------------------------------------------------------------------------- static checks
def static(overlay, path):
    docs = load(path)
    settings, secrets = code_settings()
    ns = [d["metadata"]["name"] for d in find(docs, "Namespace")]

    def objects():
        want = {("Deployment", "till-web"), ("Deployment", "till-worker"), ("Job", "till-migrate"),
                ("Service", "till-web"), ("Service", "till-worker"), ("HorizontalPodAutoscaler", "till-web"),
                ("PodDisruptionBudget", "till-web"), ("Ingress", "till"), ("ServiceAccount", "till")}
        have = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert want <= have, f"missing {sorted(want - have)}"
        assert not find(docs, "Secret"), "a Secret is rendered: secret values belong to the operator's Secret"
        assert len(ns) == 1, f"namespaces {ns}"
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == ns[0], f"{d['kind']}/{d['metadata']['name']} not in {ns[0]}"
            assert d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "till", d["metadata"]["name"]
        assert one(docs, "HorizontalPodAutoscaler", "till-web")["apiVersion"] == "autoscaling/v2"

    def selectors():
        templates = pod_templates(docs)
        for d in find(docs, "Deployment"):
            assert selected(d["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]), d["metadata"]["name"]
        for s in find(docs, "Service"):
            hits = [n for n, t in templates if selected({"matchLabels": s["spec"]["selector"]}, t["metadata"]["labels"])]
            assert hits == [s["metadata"]["name"]], f"Service {s['metadata']['name']} selects {hits}"
            _, c = container(docs, "Deployment", hits[0])
            for p in s["spec"]["ports"]:
                named_port(c, p["targetPort"])
        pdb = one(docs, "PodDisruptionBudget", "till-web")
        assert [n for n, t in templates if selected(pdb["spec"]["selector"], t["metadata"]["labels"])] == ["till-web"]
        ref = one(docs, "HorizontalPodAutoscaler", "till-web")["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", "till-web"), ref
        services = {s["metadata"]["name"]: s for s in find(docs, "Service")}
        for ing in find(docs, "Ingress"):
            for rule in ing["spec"]["rules"]:
                for p in rule["http"]["paths"]:
                    b = p["backend"]["service"]
                    assert b["name"] in services, b
                    assert b["port"]["name"] in [x["name"] for x in services[b["name"]]["spec"]["ports"]], b

    def env_names():
        cm_name, data = config_data(docs)
        known = set(settings) | {"RUST_LOG"}
        assert set(data) <= known, f"ConfigMap keys Till does not read: {sorted(set(data) - known)}"
        leaked = set(data) & secrets
        assert not leaked, f"secrets in the ConfigMap: {sorted(leaked)}"
        for name, t in pod_templates(docs):
            c = t["spec"]["containers"][0]
            refs = [e.get("configMapRef", {}).get("name") for e in c.get("envFrom", [])]
            srefs = [e.get("secretRef", {}).get("name") for e in c.get("envFrom", [])]
            assert cm_name in refs and "till-secrets" in srefs, f"{name}: envFrom {c.get('envFrom')}"
            for e in c.get("env", []):
                assert e["name"] in known, f"{name}: env {e['name']} is not a setting Till reads"
                assert "value" not in e or e["name"] not in secrets, f"{name}: secret {e['name']} inline"
        example = os.path.join(ROOT, "deploy/k8s/till-secrets.env.example")
        keys = {l.split("=", 1)[0] for l in open(example) if re.match(r"^[A-Z][A-Z0-9_]*=", l)}
        assert keys <= known, f"till-secrets.env.example: unknown {sorted(keys - known)}"
        assert secrets <= keys, f"till-secrets.env.example lacks {sorted(secrets - keys)}"

    def web():
        spec, c = container(docs, "Deployment", "till-web")
        d = one(docs, "Deployment", "till-web")
        assert c["args"] == ["serve"], f"args {c['args']}"
        assert "replicas" not in d["spec"], "replicas set: every apply would undo the autoscaler"
        ru = d["spec"]["strategy"]["rollingUpdate"]
        assert ru["maxUnavailable"] == 0, ru
        p = probes(c)
        assert set(p) == {"startupProbe", "livenessProbe", "readinessProbe"}, sorted(p)
        # Which path answers what is asked of the binary (runtime): readiness must turn 503 on
        # SIGTERM while liveness stays 200; here only that they are two different paths.
        paths = {k: pr["httpGet"]["path"] for k, pr in p.items()}
        assert paths["readinessProbe"] != paths["livenessProbe"], f"one path for both: {paths}"
        port = port_of(setting(docs, "BIND_ADDR"))
        for k, pr in p.items():
            assert named_port(c, pr["httpGet"]["port"]) == port, f"{k} not on BIND_ADDR's port {port}"
        ann = d["spec"]["template"]["metadata"]["annotations"]
        assert int(ann["prometheus.io/port"]) == port, ann
        cmd = c["lifecycle"]["preStop"]["exec"]["command"]
        assert cmd[0] == "sleep" and len(cmd) == 2, cmd
        pause = int(cmd[1])
        drain = int(setting(docs, "SHUTDOWN_DRAIN_MS")) / 1000
        req = int(setting(docs, "REQUEST_TIMEOUT_SECONDS"))
        need = pause + drain + req + 3  # + the WebSocket close grace
        grace = spec["terminationGracePeriodSeconds"]
        assert pause >= 5, f"preStop pause {pause}s: too short for endpoints to update"
        assert grace > need, f"terminationGracePeriodSeconds {grace} <= preStop {pause} + drain {drain} + request {req} + 3"

    def worker():
        spec, c = container(docs, "Deployment", "till-worker")
        assert c["args"] == ["worker"], c["args"]
        port = port_of(setting(docs, "WORKER_HEALTH_ADDR"))
        p = probes(c)
        assert {"livenessProbe", "readinessProbe"} <= set(p), sorted(p)
        for k, pr in p.items():
            h = pr.get("httpGet") or pr.get("tcpSocket")
            assert named_port(c, h["port"]) == port, f"{k} not on WORKER_HEALTH_ADDR's port {port}"
        ann = one(docs, "Deployment", "till-worker")["spec"]["template"]["metadata"]["annotations"]
        assert int(ann["prometheus.io/port"]) == port, ann
        grace = int(setting(docs, "WORKER_SHUTDOWN_GRACE_SECONDS"))
        assert spec["terminationGracePeriodSeconds"] > grace + 5, "grace shorter than the jobs' shutdown grace"

    def job():
        j = one(docs, "Job", "till-migrate")
        spec, c = container(docs, "Job", "till-migrate")
        assert c["args"] == ["migrate"], c["args"]
        assert spec["restartPolicy"] == "Never" and j["spec"]["backoffLimit"] >= 1
        assert j["spec"].get("activeDeadlineSeconds"), "no deadline"

    def security():
        for name, t in pod_templates(docs):
            s = t["spec"]
            assert s["securityContext"]["runAsNonRoot"] is True, name
            assert s["securityContext"]["runAsUser"] >= 10000, name
            assert s["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
            assert s["automountServiceAccountToken"] is False and s["serviceAccountName"] == "till", name
            tmp = {v["name"] for v in s.get("volumes", []) if "emptyDir" in v}
            for c in s["containers"]:
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
                assert sc["capabilities"]["drop"] == ["ALL"], name
                for k in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c["resources"][k]), f"{name}: {k}"
                assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"]), f"{name}: /tmp"
        labels = one(docs, "Namespace", ns[0])["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels

    def images():
        imgs = {t["spec"]["containers"][0]["image"] for _, t in pod_templates(docs)}
        assert len(imgs) == 1, f"different images {imgs}"
        img = imgs.pop()
        repo, _, tag = img.rpartition(":")
        assert "/" in repo and tag and tag != "latest" and "/" not in tag, f"image {img}: the overlay sets name and tag"

    def ingress():
        ings = find(docs, "Ingress")
        cm = config_data(docs)[1]
        max_body = int(cm.get("MAX_BODY_BYTES", settings["MAX_BODY_BYTES"]))
        hosts = set()
        for i in ings:
            s = i["spec"]
            assert s["ingressClassName"] == "nginx", i["metadata"]["name"]
            rh = {r["host"] for r in s["rules"]}
            th = {h for t in s["tls"] for h in t["hosts"]}
            assert rh == th and all(t["secretName"] == "till-tls" for t in s["tls"]), f"{i['metadata']['name']}: TLS"
            hosts |= rh
        assert len(hosts) == 1 and not hosts.pop().endswith(".invalid"), "the overlay sets one host"
        paths = {(p["path"], p["pathType"]): i for i in ings for r in i["spec"]["rules"] for p in r["http"]["paths"]}
        main = paths[("/", "Prefix")]["metadata"]["annotations"]
        size = main["nginx.ingress.kubernetes.io/proxy-body-size"]
        unit = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
        n = int(size[:-1]) * unit[size[-1].lower()] if size[-1].isalpha() else int(size)
        assert n >= max_body, f"proxy-body-size {size} < MAX_BODY_BYTES {max_body}"
        assert int(main["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > int(setting(docs, "REQUEST_TIMEOUT_SECONDS"))
        ws = [i for (p, _t), i in paths.items() if p.endswith("/ws")]
        assert len(ws) == 1, "one WebSocket path"
        wa = ws[0]["metadata"]["annotations"]
        for k in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(wa[f"nginx.ingress.kubernetes.io/{k}"]) >= 3600, f"WebSocket {k}"
        metrics = one(docs, "Deployment", "till-web")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
        m = paths.get((metrics, "Exact"))
        assert m, f"{metrics} has no Exact path: the / prefix would expose it"
        deny = m["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/denylist-source-range", "")
        assert {"0.0.0.0/0", "::/0"} <= set(deny.split(",")), f"{metrics} is not refused to everyone: {deny!r}"
        for i in ings:
            for k, v in i["metadata"].get("annotations", {}).items():
                assert "snippet" not in k, f"{k}: snippets are off in ingress-nginx by default"

    def network():
        pols = {p["metadata"]["name"]: p["spec"] for p in find(docs, "NetworkPolicy")}
        deny = [s for s in pols.values() if s["podSelector"] == {} and set(s["policyTypes"]) == {"Ingress", "Egress"}
                and not s.get("ingress") and not s.get("egress")]
        assert deny, "no default deny"
        labels = {n: t["metadata"]["labels"] for n, t in pod_templates(docs)}
        comp = {n: l["app.kubernetes.io/component"] for n, l in labels.items()}

        def egress_to(port):
            out = {}
            for name, s in pols.items():
                for rule in s.get("egress", []):
                    if any(p.get("port") == port for p in rule.get("ports", [])):
                        for n, l in labels.items():
                            if selected(s["podSelector"], l):
                                out.setdefault(comp[n], []).extend(rule["to"])
            return out

        for port, allowed in ((5432, {"web", "worker", "migrate"}), (6379, {"web", "worker"})):
            got = egress_to(port)
            assert set(got) == allowed, f"port {port} reachable from {sorted(got)}, want {sorted(allowed)}"
            for peers in got.values():
                for peer in peers:
                    assert set(peer) == {"ipBlock"}, f"port {port}: {peer}"
                    net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    assert net.prefixlen >= 8, f"port {port}: {net} is too wide"
                    assert not net.overlaps(ipaddress.ip_network("192.0.2.0/24")), f"port {port}: base placeholder {net}"
        dns = egress_to(53)
        assert set(dns) == {"web", "worker", "migrate"}, f"DNS from {sorted(dns)}"
        for peers in dns.values():
            for peer in peers:
                assert peer.get("podSelector") == {"matchLabels": {"k8s-app": "kube-dns"}}, peer
        for name, s in pols.items():
            for rule in s.get("egress", []):
                assert rule.get("ports"), f"{name}: an egress rule without ports"
                for peer in rule.get("to", []):
                    if "ipBlock" in peer:
                        assert ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen > 0, f"{name}: egress to anywhere"
        web_in = [s for s in pols.values() if s.get("ingress") and selected(s["podSelector"], labels["till-web"])]
        port = port_of(setting(docs, "BIND_ADDR"))
        assert any(p["port"] == port for s in web_in for r in s["ingress"] for p in r["ports"]), "no ingress to web"
        mig_in = [s for s in pols.values() if s.get("ingress") and selected(s["podSelector"], labels["till-migrate"])]
        assert not mig_in, "the migration Job takes no connections"

    def readme_upgrade():
        text = open(os.path.join(ROOT, "deploy/k8s/README.md")).read()
        m = re.search(r"-l '(app\.kubernetes\.io/component) in \(([a-z,]+)\)'", text)
        assert m, "README.md: no `-l 'app.kubernetes.io/component in (…)'` step"
        chosen = [d for d in docs if d["metadata"].get("labels", {}).get(m.group(1)) in m.group(2).split(",")]
        kinds = {d["kind"] for d in chosen}
        assert {"Job", "ConfigMap", "ServiceAccount", "NetworkPolicy", "Namespace"} <= kinds, sorted(kinds)
        assert not kinds & {"Deployment", "HorizontalPodAutoscaler"}, "the first step must not roll anything"
        assert "kubectl -n" in text and "wait --for=condition=complete job/till-migrate" in text

    for name, fn in [("objects, namespace, labels, no Secret", objects),
                     ("selectors, Services, PDB, HPA target, Ingress backends", selectors),
                     ("env names are settings Till reads; no secret in the ConfigMap", env_names),
                     ("web: probes, BIND_ADDR port, preStop, grace > preStop + drain + request", web),
                     ("worker: probes on WORKER_HEALTH_ADDR's port, grace", worker),
                     ("migration Job runs `till migrate` once", job),
                     ("non-root, read-only root, no privilege, resources, /tmp, PSA restricted", security),
                     ("image name and tag from the overlay", images),
                     ("Ingress: nginx, TLS, WebSocket timeouts, body size, /metrics refused", ingress),
                     ("NetworkPolicies: default deny, DNS, PostgreSQL/Redis only from Till", network),
                     ("README's upgrade step selects config + migration Job, no rollout", readme_upgrade)]:
        check(f"{overlay}: {name}")(fn)


def overlays(dev_path, prod_path):
    dev, prod = load(dev_path), load(prod_path)

    def differ():
        img = lambda docs: one(docs, "Deployment", "till-web")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert img(dev) != img(prod), "both overlays run the same image"
        ns = lambda docs: find(docs, "Namespace")[0]["metadata"]["name"]
        assert ns(dev) != ns(prod)
        hpa = lambda docs: one(docs, "HorizontalPodAutoscaler", "till-web")["spec"]
        assert hpa(prod)["minReplicas"] >= 2 and hpa(prod)["maxReplicas"] > hpa(prod)["minReplicas"]

    check("overlays: own namespace, image and scale each")(differ)


# ------------------------------------------------------------------------------------- checkov
def checkov(report_path):
    reports = json.load(open(report_path))
    if isinstance(reports, dict):
        reports = [reports]
    by_type = {r["check_type"]: r for r in reports}
    for kind in ("kubernetes", "dockerfile"):
        def clean(kind=kind):
            r = by_type.get(kind)
            assert r, f"no {kind} report"
            s = r["summary"]
            failed = [f"{c['check_id']} {c['resource']}" for c in r["results"]["failed_checks"]]
            assert not failed, f"{len(failed)} failed: {failed}"
            assert s["passed"] > 20, f"only {s['passed']} passed"
            assert s["parsing_errors"] == 0, f"{s['parsing_errors']} files not parsed"
            for c in r["results"]["skipped_checks"]:
                why = (c.get("check_result") or {}).get("suppress_comment") or ""
                assert len(why) >= 30, f"{c['check_id']} on {c['resource']} skipped without a reason"
            print(f"note  checkov {kind}: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped",
                  file=sys.stderr)
            ids = sorted({c["check_id"] for c in r["results"]["skipped_checks"]})
            for i in ids:
                n = sum(c["check_id"] == i for c in r["results"]["skipped_checks"])
                print(f"note    suppressed {i} on {n} resource(s)", file=sys.stderr)

        check(f"checkov {kind}: no failed check; every suppression has a reason")(clean)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"static": static, "overlays": overlays, "checkov": checkov}[cmd](*args)
    report()
    return 0


def report():
    for status, name, why in results:
        print(f"{status} {name}" + (f": {why}" if why else ""))


if __name__ == "__main__":
    sys.exit(main())
