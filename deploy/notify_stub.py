#!/usr/bin/env python3
"""Stands in for systemd's notification socket in the service tests (check_service.sh): binds a
Unix datagram socket at PATH and appends every datagram a service sends (sd_notify) to LOG, one
line each: seconds since the stub started, then the message with its newlines as ' | '.
Runs until killed. usage: notify_stub.py PATH LOG"""
import os
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
t0 = time.monotonic()
with open(log, "a", buffering=1) as out:
    out.write("%.3f STUB=listening\n" % 0.0)
    while True:
        msg = sock.recv(65536).decode("utf-8", "replace")
        out.write("%.3f %s\n" % (time.monotonic() - t0, msg.strip().replace("\n", " | ")))
