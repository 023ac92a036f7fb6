#!/usr/bin/env python3
"""One HTTPS client, three ways to its upstream, for bench/sandbox-latency:

    sandbox-client.py direct  ADDR:PORT N CAFILE   straight to the server (no vault-run)
    sandbox-client.py proxy   -         N          through $HTTPS_PROXY (CONNECT), vault-run's CA
    sandbox-client.py capture -         N          to localhost:443 as a proxy-unaware client would
                                                   (the --sandbox capture), vault-run's CA

Sends N GET requests on one kept-alive connection (after 20 warm-up requests) with
`Authorization: Bearer $API_KEY` and prints {"median_us": …, "p90_us": …} as JSON.
Standard library only.
"""

import base64
import http.client
import json
import os
import ssl
import statistics
import sys
import time
from urllib.parse import urlsplit

mode, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cafile = sys.argv[4] if len(sys.argv) > 4 else os.environ["SSL_CERT_FILE"]
ctx = ssl.create_default_context(cafile=cafile)
if mode == "direct":
    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx)
elif mode == "proxy":
    p = urlsplit(os.environ["HTTPS_PROXY"])
    auth = base64.b64encode(f"{p.username}:{p.password}".encode()).decode()
    conn = http.client.HTTPSConnection(p.hostname, p.port, context=ctx)
    conn.set_tunnel("localhost", 443, headers={"Proxy-Authorization": f"Basic {auth}"})
else:
    conn = http.client.HTTPSConnection("localhost", 443, context=ctx)
headers = {"Authorization": "Bearer " + os.environ.get("API_KEY", "none"), "Host": "localhost"}
times = []
for i in range(20 + n):
    t = time.perf_counter()
    conn.request("GET", "/v1/health", headers=headers)
    conn.getresponse().read()
    if i >= 20:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"median_us": statistics.median(times) * 1e6, "p90_us": times[int(len(times) * 0.9) - 1] * 1e6}))
