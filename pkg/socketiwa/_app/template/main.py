"""__NAME__: a Python program with real sockets.

Runs as an Isolated Web App (socketiwa run .) and on plain CPython (python main.py), the same
code on both: socketiwa gives Direct Sockets in the browser and the OS's sockets elsewhere.
"""
import asyncio
import sys

import socketiwa


async def main() -> int:
    print(f"__NAME__ on the {socketiwa.backend_name()} backend, arguments: {sys.argv[1:]}")
    # Two UDP sockets on loopback talking to each other.
    receiver = await socketiwa.create_udp(local_address="127.0.0.1")
    arrived = asyncio.get_running_loop().create_future()
    receiver.on("message", lambda data, rinfo: None if arrived.done() else arrived.set_result(data))
    sender = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=receiver.local_port)
    await sender.send(b"hello over UDP")
    print("received:", (await asyncio.wait_for(arrived, 10)).decode())
    await sender.close()
    await receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
