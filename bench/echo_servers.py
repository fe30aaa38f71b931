"""Echo servers for the benchmarks, in their own process so they never share a CPU loop with
the code being measured. Prints 'UDP <port> TCP <port>' once listening."""
import socket
import sys
import threading


def udp(sock):
    while True:
        data, addr = sock.recvfrom(65535)
        sock.sendto(data, addr)


def tcp_client(conn):
    with conn:
        while data := conn.recv(1 << 20):
            conn.sendall(data)


def tcp(srv):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=tcp_client, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.bind(("127.0.0.1", 0))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    t.listen(16)
    threading.Thread(target=udp, args=(u,), daemon=True).start()
    threading.Thread(target=tcp, args=(t,), daemon=True).start()
    print(f"UDP {u.getsockname()[1]} TCP {t.getsockname()[1]}", flush=True)
    sys.stdin.read()  # run until the driver closes our stdin
