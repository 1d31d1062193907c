#!/usr/bin/env python3
"""Writes the sample recordings of examples/replay/ (deterministic; run from anywhere):

  access.log  3 minutes of an nginx combined access log against the embedded shop's API:
              600 sessions from 3 User-Agents (60 % iOS app, 25 % Android app, 15 % desktop
              browser), each browsing, viewing items and sometimes buying.
  shop.har    one browser session as a HAR 1.2 file: 2 pages, 6 requests.

Both carry a planted secret (an Authorization header, a ?token= value) so that the tests can
show `flashcrowd import` never writes one out. Nothing here was copied from a real system.
"""
import json
import os
import random
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
TZ = timezone(timedelta(hours=8))
START = datetime(2026, 11, 10, 23, 58, 0, tzinfo=TZ)
UAS = [
    (60, "ShopApp-iOS/10.4 (iPhone; iOS 17.1)"),
    (25, "okhttp/4.12.0 ShopApp-Android/10.4"),
    (15, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"),
]
PLANTED_TOKEN = "planted-token-5678"
PLANTED_AUTH = "Bearer planted-secret-1234"


def log_lines(rng):
    lines = []
    for s in range(600):
        ua = UAS[0][1] if s % 20 < 12 else UAS[1][1] if s % 20 < 17 else UAS[2][1]
        ip = f"10.{s % 7}.{s // 7 % 250}.{s % 250 + 1}"
        t = rng.uniform(0, 170)
        reqs = [("GET", f"/api/items?page={rng.randint(1, 50)}")]
        for _ in range(rng.randint(1, 3)):
            reqs.append(("GET", f"/api/items/{rng.randint(1, 1000)}"))
        if s % 4 == 0:
            reqs.append(("POST", "/api/cart"))
            reqs.append(("POST", f"/api/orders?token={PLANTED_TOKEN}"))
        for method, target in reqs:
            when = START + timedelta(seconds=t)
            stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
            lines.append((t, f'{ip} - - [{stamp}] "{method} {target} HTTP/1.1" 200 {rng.randint(80, 4000)} "-" "{ua}"\n'))
            t += rng.uniform(0.5, 4.0)
    lines.sort(key=lambda x: x[0])
    return [l for _, l in lines]


def har():
    base = START + timedelta(minutes=2)
    ua = UAS[2][1]

    def entry(page, sec, method, url, body=None):
        req = {
            "method": method,
            "url": "http://127.0.0.1:8080" + url,
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Host", "value": "127.0.0.1:8080"},
                {"name": "User-Agent", "value": ua},
                {"name": "Authorization", "value": PLANTED_AUTH},
            ],
            "queryString": [],
            "headersSize": -1,
            "bodySize": len(body or ""),
        }
        if body is not None:
            req["postData"] = {"mimeType": "application/json", "text": body}
        return {
            "pageref": page,
            "startedDateTime": (base + timedelta(seconds=sec)).isoformat(timespec="milliseconds"),
            "time": 12,
            "request": req,
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                         "headers": [], "content": {"size": 0, "mimeType": "application/json"},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0},
            "cache": {},
            "timings": {"send": 0, "wait": 12, "receive": 0},
        }

    return {"log": {
        "version": "1.2",
        "creator": {"name": "examples/replay/generate.py", "version": "1"},
        "pages": [
            {"id": "page_1", "title": "items", "startedDateTime": base.isoformat(timespec="milliseconds"), "pageTimings": {}},
            {"id": "page_2", "title": "checkout", "startedDateTime": (base + timedelta(seconds=20)).isoformat(timespec="milliseconds"), "pageTimings": {}},
        ],
        "entries": [
            entry("page_1", 0.0, "GET", "/api/items?page=1"),
            entry("page_1", 1.5, "GET", "/api/items/17"),
            entry("page_1", 4.0, "GET", "/api/items/23"),
            entry("page_2", 20.0, "POST", "/api/cart", '{"sku": 17, "qty": 1}'),
            entry("page_2", 22.5, "GET", f"/api/items/17?token={PLANTED_TOKEN}"),
            entry("page_2", 25.0, "POST", "/api/orders", '{"cart": "c-1", "user": "u-1"}'),
        ],
    }}


def main():
    rng = random.Random(11)
    with open(os.path.join(HERE, "access.log"), "w") as f:
        f.writelines(log_lines(rng))
    with open(os.path.join(HERE, "shop.har"), "w") as f:
        json.dump(har(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
