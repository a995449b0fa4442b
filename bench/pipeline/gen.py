#!/usr/bin/env python3
"""Writes COF lines for the pipeline benchmark: N observations drawn from D
distinct A/AAAA/CNAME triples (D = N means no repeats). Fixed seed."""
import json, random, sys

def main():
    total, distinct, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(20261122)
    base = 1_700_000_000
    with open(path, "w") as out:
        for i in range(total):
            k = i if distinct >= total else rng.randrange(distinct)
            name = f"h{k}.zone{k % 5000}.example"
            kind = k % 10
            if kind < 7:
                rrtype, rdata = "A", f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}"
            elif kind < 9:
                rrtype, rdata = "AAAA", f"2001:db8::{k:x}"
            else:
                rrtype, rdata = "CNAME", f"edge{k % 97}.cdn.example."
            t = base + rng.randrange(86_400)
            out.write(json.dumps({"rrname": name, "rrtype": rrtype, "rdata": rdata,
                                  "time_first": t, "time_last": t, "count": 1,
                                  "sensor_id": "bench"}, separators=(",", ":")) + "\n")

main()
