"""A Kubernetes API server that knows only its API discovery: enough for
`kubectl apply --dry-run=client` to map the chart's kinds to resources without a cluster.
Every object is absent (404), so kubectl reports each as "created (dry run)". It answers on
127.0.0.1 at the port given, and prints nothing but errors.

The kinds it knows are the ones the chart renders: ConfigMap, Secret (v1), Deployment
(apps/v1), ScaledObject and TriggerAuthentication (keda.sh/v1alpha1). A kind the chart starts
to use that is not listed here makes kubectl fail with "no matches for kind": add it.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    "/api/v1": ("v1", [("configmaps", "ConfigMap"), ("secrets", "Secret")]),
    "/apis/apps/v1": ("apps/v1", [("deployments", "Deployment")]),
    "/apis/keda.sh/v1alpha1": (
        "keda.sh/v1alpha1",
        [("scaledobjects", "ScaledObject"), ("triggerauthentications", "TriggerAuthentication")],
    ),
}
GROUPS = [("apps", "v1"), ("keda.sh", "v1alpha1")]


def resource_list(group_version, resources):
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": True,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for name, kind in resources
        ],
    }


def answer(path):
    if path == "/api":
        return 200, {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in GROUPS]}
    if path in RESOURCES:
        return 200, resource_list(*RESOURCES[path])
    return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "reason": "NotFound", "code": 404, "message": f"{path} not found"}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = answer(self.path.split("?")[0])
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
