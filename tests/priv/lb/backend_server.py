#!/usr/bin/env python3
"""Test backend for LB priv tests: TCP and UDP on PORT answer with NAME.

TCP: sends "NAME\n" on accept, then echoes each line until the client closes.
UDP: answers every datagram with "NAME".
"""
import socket
import sys
import threading

name, port = sys.argv[1], int(sys.argv[2])


def serve_conn(c):
    with c:
        c.sendall((name + "\n").encode())
        buf = b""
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)


def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_conn, args=(c,), daemon=True).start()


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        _, addr = s.recvfrom(2048)
        s.sendto(name.encode(), addr)


threading.Thread(target=udp, daemon=True).start()
tcp()
