#!/usr/bin/env python3
"""A local COF websocket server for tests/websocket.rs (Python `websockets`).

usage: ws_server.py PORT MODE FILE...
  samples  every line of FILEs, one message each, then the connection stays open
  drop     first connection: the first 3 lines, then the TCP connection is
           aborted mid-stream; later connections: the remaining lines
  junk     bad lines (not JSON, missing fields, oversized, not UTF-8) around
           the good ones, some sharing a message
With WS_CERT and WS_KEY in the environment it serves wss:// with them.
Prints READY once listening.
"""
import asyncio
import os
import ssl
import sys

from websockets.asyncio.server import serve

port, mode, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
lines = [l.rstrip("\n") for f in files for l in open(f, encoding="utf-8") if l.strip()]
connections = 0


async def handler(ws):
    global connections
    connections += 1
    if mode == "samples":
        for line in lines:
            await ws.send(line)
    elif mode == "drop":
        if connections == 1:
            for line in lines[:3]:
                await ws.send(line)
            await asyncio.sleep(0.2)
            ws.transport.abort()
            return
        for line in lines[3:]:
            await ws.send(line)
    elif mode == "junk":
        await ws.send("this is not json")
        await ws.send('{"rrname": "x.example", "rrtype": "A"}')
        await ws.send('{"rrname": "big.example", "rrtype": "TXT", "rdata": "' + "a" * 100000 + '", "time_first": 1, "time_last": 2}')
        await ws.send(b"\xff\xfe\x00 binary junk")
        await ws.send(lines[0] + "\n[1, 2, 3]\n" + lines[1])
        for line in lines[2:]:
            await ws.send(line)
    await ws.wait_closed()


async def main():
    context = None
    if os.environ.get("WS_CERT"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["WS_CERT"], os.environ["WS_KEY"])
    async with serve(handler, "127.0.0.1", port, max_size=None, ssl=context):
        print("READY", flush=True)
        await asyncio.Future()


asyncio.run(main())
