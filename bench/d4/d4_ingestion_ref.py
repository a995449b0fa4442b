#!/usr/bin/env python3
"""The reference: D4's pdns-ingestion.py loop, re-implemented command for
command from the reference spec (cof-d4.md §1.2-1.4): one RPOP per line, one
round trip per write, the non-atomic first/last-seen updates. Pushes N lines
(the same lines as d4_bench's queue mode) to the queue, then times the loop.

usage: d4_ingestion_ref.py D4_PORT PDNS_PORT N
"""
import sys
import time

import redis

UUID = "bench-0000-0000-0000-000000000000"
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}


def line(i):
    return "{}.{:06}||10.0.0.1||10.0.0.53||IN||host{}.zone{}.example.com.||A||10.{}.{}.{}||300||1".format(
        1_700_000_000 + i % 86_400, i % 1_000_000, i % 100_000, i % 5000,
        (i >> 16) & 255, (i >> 8) & 255, i & 255)


def main():
    d4_port, pdns_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    r = redis.Redis(host="127.0.0.1", port=d4_port, db=2)
    r_d4 = redis.Redis(host="127.0.0.1", port=pdns_port, db=0)
    key = "analyzer:8:" + UUID
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.lpush(key, line(i))
    pipe.execute()
    before = r_d4.info("memory")["used_memory"]
    start = time.time()
    lines = 0
    while True:
        d4_record_line = r.rpop(key)
        if d4_record_line is None:
            break
        d4_record_line = d4_record_line.decode("utf-8")
        lines += 1
        l = d4_record_line.split("||")
        if len(l) < 5:
            continue
        rdns = {
            "timestamp": l[0].split(".")[0], "class": l[3],
            "q": l[4].lower().strip("."), "type": l[5],
            "v": l[6].lower().strip("."), "ttl": l[7],
        }
        t = str(TYPES[rdns["type"]])
        q, v, ts = rdns["q"], rdns["v"], rdns["timestamp"]
        r_d4.sadd("r:{}:{}".format(q, t), v)
        r_d4.sadd("v:{}:{}".format(v, t), q)
        if not r_d4.exists("s:{}:{}:{}".format(q, v, t)):
            r_d4.set("s:{}:{}:{}".format(q, v, t), ts)
        last = r_d4.get("l:{}:{}:{}".format(q, v, t))
        if last is None or int(last) < int(ts):
            r_d4.set("l:{}:{}:{}".format(q, v, t), ts)
        r_d4.incr("o:{}:{}:{}".format(q, v, t))
        r_d4.hincrby("dist:ttl", rdns["ttl"], 1)
        r_d4.hincrby("dist:class", rdns["class"], 1)
        r_d4.hincrby("dist:type", t, 1)
        r_d4.incrby("stats:processed", 1)
    seconds = time.time() - start
    distinct = len(r_d4.keys("o:*"))
    after = r_d4.info("memory")["used_memory"]
    print("lines={}".format(lines))
    print("seconds={:.3f}".format(seconds))
    print("lines_per_sec={:.0f}".format(lines / seconds))
    print("bytes_per_record={:.0f}".format((after - before) / max(distinct, 1)))


if __name__ == "__main__":
    main()
