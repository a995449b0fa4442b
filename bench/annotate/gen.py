#!/usr/bin/env python3
"""Generates the annotate benchmark inputs (deterministic).

gen.py store RECORDS IPS FILE   COF NDJSON: RECORDS A records over IPS addresses
gen.py flows FLOWS IPS FILE     CSV flows src_ip,dst_ip,ts,bytes: dst among the
                                IPS addresses, src among 50,000 clients
"""
import random
import sys

T0 = 1_700_000_000
SPAN = 30 * 86400


def address(k):
    return f"100.{64 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}"


def store(records, ips, path):
    rng = random.Random(1)
    with open(path, "w") as out:
        for i in range(records):
            first = T0 + rng.randrange(SPAN)
            last = first + rng.randrange(7 * 86400)
            out.write(
                f'{{"rrname":"h{i}.d{i % 5000}.example","rrtype":"A","rdata":"{address(i % ips)}",'
                f'"time_first":{first},"time_last":{last},"count":{1 + i % 7}}}\n'
            )


def flows(count, ips, path):
    rng = random.Random(2)
    with open(path, "w") as out:
        out.write("src_ip,dst_ip,ts,bytes\n")
        for _ in range(count):
            client = rng.randrange(50_000)
            src = f"10.{client >> 16}.{(client >> 8) & 255}.{client & 255}"
            out.write(f"{src},{address(rng.randrange(ips))},{T0 + rng.randrange(SPAN)},{rng.randrange(1, 100000)}\n")


if __name__ == "__main__":
    kind, n, ips, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    (store if kind == "store" else flows)(n, ips, path)
